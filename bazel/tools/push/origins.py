"""Which hosts a push trusts with what, decided on parsed origins and addresses, never on how a
name begins (`localhost.evil.com` is somebody's server, `127.example.com` too).

- A registry's credentials go to its own origin (scheme, host, port) alone, as docker and
  containerd send them: an upload `Location` or a redirect to another origin gets the request
  without them.
- A Bearer challenge may name a token service on another origin; it gets the credentials only
  over HTTPS, or on loopback, where plain HTTP never leaves the machine.
- Loopback (127.0.0.0/8, ::1, and the name `localhost` exactly) is where a registry is spoken to
  in plain HTTP without `--plain_http`.

An origin is read from the URL as requests sends it, never from the URL as written: parsers
disagree on odd URLs (`http://evil\\@registry/` is `registry` to urlsplit, `evil` to the urllib3
parser requests re-encodes it with), and the host that gets the credentials is the one requests
connects to.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import urllib.parse

import requests

DEFAULT_PORTS = {"http": 80, "https": 443}


@dataclasses.dataclass(frozen=True)
class Origin:
    """Scheme, host (lower case, IPv6 without brackets) and port, the default one filled in."""

    scheme: str
    host: str
    port: int

    def __str__(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.scheme}://{host}:{self.port}"


def origin_of(url: str) -> Origin:
    """The origin of an absolute http(s) URL; ValueError for anything else (no host, a port
    that is not a number, another scheme). Read as requests sends it: it connects to the host
    urlsplit reads in the URL it prepared."""
    prepared = requests.PreparedRequest()
    prepared.prepare_url(url, None)  # MissingSchema and InvalidURL are ValueErrors
    parts = urllib.parse.urlsplit(prepared.url or "")
    scheme = parts.scheme.lower()
    if scheme not in DEFAULT_PORTS or not parts.hostname:
        raise ValueError(f"not an http(s) URL with a host: {url!r}")
    return Origin(scheme, parts.hostname, parts.port or DEFAULT_PORTS[scheme])


def host_name(host: str) -> str:
    """The name or address of a `host[:port]` (`[v6]:port` too), without port or brackets."""
    if host.startswith("["):
        return host[1:].partition("]")[0]
    if host.count(":") == 1:
        return host.partition(":")[0]
    return host  # a name, an IPv4 address, or a bare IPv6 address


def is_loopback(host: str) -> bool:
    """`host[:port]` is this machine: `localhost` exactly, or an address in 127.0.0.0/8 or ::1."""
    name = host_name(host)
    if name.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def token_service_may_get_credentials(realm: Origin, registry: Origin) -> bool:
    """Whether the token service at `realm` may be sent the registry's credentials: over HTTPS,
    on loopback, or on the registry's own origin (which gets them anyway)."""
    return realm.scheme == "https" or is_loopback(realm.host) or realm == registry
