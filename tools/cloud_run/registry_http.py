"""The pull's HTTP GETs, bounded whatever the registry does: the registry is whichever one a
Service names, so it may be an attacker's, and the local Cloud Run runs as root.

- A read timeout on the DNS lookup, on connecting and on every read: a registry (or its DNS
  server) that stalls fails in that time.
- One deadline for the whole pull, enforced by shutting the socket down when it passes: a
  registry that drips a byte just inside each read timeout cannot keep the pull alive.
- Every body is read in pieces against a cap the caller gives (a manifest's limit, a blob's
  declared size), so no answer is held in memory or on disk beyond what was promised.
- Redirects are followed by hand, at most `max_redirects`, only to https or to plain http on
  loopback (urllib's opener follows one to any http host), and an Authorization header is
  dropped once a redirect leaves the origin it was meant for.
- A 401 is an error that says so: there is no token flow (anonymous pulls only).
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import http.client
import ipaddress
import socket
import ssl
import threading
import time
import urllib.parse
from collections.abc import Iterator

MIB = 1 << 20
_REDIRECTS = (301, 302, 303, 307, 308)
# A body is read in pieces so that a large one never sits in memory whole.
_CHUNK = MIB


class PullError(Exception):
    """The image cannot be pulled; the message says why (a revision's condition shows it)."""


@dataclasses.dataclass(frozen=True)
class Limits:
    """What one pull may cost, whatever the registry does. Tests pass small ones."""

    read_timeout_seconds: float = 30.0  # the DNS lookup, connecting, each read of an answer
    total_seconds: float = 900.0  # the whole pull: its manifest and every blob
    max_manifest_bytes: int = 4 * MIB  # registries refuse manifests over 4 MiB
    max_image_bytes: int = 10 * 1024 * MIB  # config and layers, as their descriptors declare
    max_redirects: int = 5


DEFAULT_LIMITS = Limits()


class Deadline:
    """The end of a pull's time (Limits.total_seconds after it began)."""

    def __init__(self, total_seconds: float) -> None:
        self.total_seconds = total_seconds
        self._end = time.monotonic() + total_seconds

    def remaining(self) -> float:
        return self._end - time.monotonic()

    def check(self, url: str) -> None:
        if self.remaining() <= 0:
            raise PullError(
                f"{url}: the pull took longer than its limit of {self.total_seconds:g} s"
            )


def is_loopback(host: str) -> bool:
    """True for `localhost` and loopback addresses (127.0.0.0/8, ::1), bracketed or not."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


class Body:
    """An answer's body, read in pieces under the pull's read timeout and deadline."""

    def __init__(
        self, url: str, response: http.client.HTTPResponse, limits: Limits, deadline: Deadline
    ) -> None:
        self.url = url
        self.media_type = (response.getheader("Content-Type") or "").split(";")[0].strip()
        self._response = response
        self._limits = limits
        self._deadline = deadline

    def chunks(self, limit: int, too_long: str) -> Iterator[bytes]:
        """The body's bytes; PullError(`too_long`) as soon as more than `limit` arrive."""
        received = 0
        while True:
            try:
                # read1: at most one read of the socket, so the deadline is checked between.
                chunk = self._response.read1(_CHUNK)
            except (OSError, http.client.HTTPException) as error:
                raise _failure(self.url, error, self._limits, self._deadline) from None
            self._deadline.check(self.url)  # a socket shut at the deadline reads as its end
            if not chunk:
                return
            received += len(chunk)
            if received > limit:
                raise PullError(too_long)
            yield chunk

    def read(self, limit: int, too_long: str) -> bytes:
        return b"".join(self.chunks(limit, too_long))


@contextlib.contextmanager
def get(
    url: str,
    limits: Limits,
    deadline: Deadline,
    accept: str | None = None,
    authorization: str | None = None,
) -> Iterator[Body]:
    """The body of a 200 answer to GET `url`, redirects followed; PullError for any other
    answer. `authorization` goes only to the origin of `url`."""
    _check_scheme(url, url)
    headers = {"Accept": accept} if accept else {}
    if authorization is not None:
        headers["Authorization"] = authorization
    origin = _origin(url)
    for _ in range(limits.max_redirects + 1):
        connection, watchdog = _connection(url, limits, deadline)
        try:
            response = _request(connection, url, headers, limits, deadline)
            if response.status in _REDIRECTS:
                location = response.getheader("Location")
                if not location:
                    raise PullError(f"{url}: HTTP {response.status} without a Location")
                target = urllib.parse.urljoin(url, location)
                _check_scheme(url, target)
                if _origin(target) != origin:
                    headers.pop("Authorization", None)  # credentials stay with their origin
                url = target
                continue
            if response.status == 401:
                raise PullError(
                    f"{url}: HTTP 401: the registry wants credentials, and the local Cloud Run "
                    "pulls anonymously (no token flow): use a registry that allows anonymous "
                    "pulls, such as one on loopback"
                )
            if response.status != 200:
                raise PullError(f"{url}: HTTP {response.status}")
            yield Body(url, response, limits, deadline)
            return
        finally:
            watchdog.cancel()
            connection.close()
    raise PullError(f"{url}: more than {limits.max_redirects} redirects")


def _origin(url: str) -> tuple[str, str, int | None]:
    parts = urllib.parse.urlsplit(url)
    return parts.scheme, (parts.hostname or ""), parts.port


def _check_scheme(source: str, url: str) -> None:
    parts = urllib.parse.urlsplit(url)
    if parts.scheme == "https" or (parts.scheme == "http" and is_loopback(parts.hostname or "")):
        return
    what = "URL" if source == url else f"redirect from {source} to"
    raise PullError(f"{what} {url} refused: only https, or plain http to loopback")


def _connection(
    url: str, limits: Limits, deadline: Deadline
) -> tuple[http.client.HTTPConnection, threading.Timer]:
    """A connection to `url`'s host (not yet open), and the timer that shuts its socket at
    the deadline (a read blocked then returns at once)."""
    deadline.check(url)
    parts = urllib.parse.urlsplit(url)
    timeout = limits.read_timeout_seconds
    if parts.scheme == "https":
        connection: http.client.HTTPConnection = http.client.HTTPSConnection(
            parts.hostname, parts.port, timeout=timeout, context=ssl.create_default_context()
        )
    else:
        connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=timeout)
    # http.client's hook for opening the socket (socket.create_connection by default, whose
    # DNS lookup no timeout bounds).
    connection._create_connection = functools.partial(_open_socket, url, limits, deadline)
    watchdog = threading.Timer(max(deadline.remaining(), 0), _shut, [connection])
    watchdog.daemon = True
    watchdog.start()
    return connection, watchdog


def _open_socket(
    url: str,
    limits: Limits,
    deadline: Deadline,
    address: tuple[str, int],
    timeout: float,
    source_address: tuple[str, int] | None = None,
) -> socket.socket:
    """socket.create_connection, with the host looked up under the read timeout."""
    host, port = address
    error: OSError = OSError(f"no address for {host}")
    for family, kind, protocol, _, target in _lookup(url, host, port, limits, deadline):
        sock = socket.socket(family, kind, protocol)
        try:
            sock.settimeout(timeout)
            if source_address:
                sock.bind(source_address)
            sock.connect(target)
            return sock
        except OSError as failed:
            error = failed
            sock.close()
    raise error


def _lookup(url: str, host: str, port: int, limits: Limits, deadline: Deadline) -> list[tuple]:
    """getaddrinfo, waited for no longer than the read timeout (or what is left of the pull):
    the resolver's own timeouts and retries are the system's, and a DNS server that never
    answers would hold the pull for them. A lookup given up on ends in its daemon thread, its
    answer dropped."""
    answers: list[tuple] = []
    failures: list[OSError] = []

    def look_up() -> None:
        try:
            answers.extend(socket.getaddrinfo(host, port, type=socket.SOCK_STREAM))
        except OSError as error:
            failures.append(error)

    wait = min(limits.read_timeout_seconds, max(deadline.remaining(), 0))
    thread = threading.Thread(target=look_up, name=f"DNS lookup of {host}", daemon=True)
    thread.start()
    thread.join(wait)
    if thread.is_alive():
        deadline.check(url)
        raise PullError(f"{url}: the DNS lookup of {host} took more than {wait:g} s (read timeout)")
    if failures:
        raise failures[0]
    return answers


def _shut(connection: http.client.HTTPConnection) -> None:
    sock = connection.sock
    if sock is not None:
        with contextlib.suppress(OSError):
            # The plain socket's shutdown, also under TLS: SSLSocket's would drop its TLS
            # state under the thread that is reading.
            socket.socket.shutdown(sock, socket.SHUT_RDWR)


def _request(
    connection: http.client.HTTPConnection,
    url: str,
    headers: dict[str, str],
    limits: Limits,
    deadline: Deadline,
) -> http.client.HTTPResponse:
    parts = urllib.parse.urlsplit(url)
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    try:
        connection.request("GET", target, headers=headers)
        deadline.check(url)  # the deadline passed while connecting, before the watchdog could cut
        return connection.getresponse()
    except (OSError, http.client.HTTPException) as error:
        raise _failure(url, error, limits, deadline) from None


def _failure(url: str, error: Exception, limits: Limits, deadline: Deadline) -> PullError:
    deadline.check(url)  # a read cut short by the deadline says so, not "connection reset"
    if isinstance(error, TimeoutError):
        return PullError(f"{url}: no answer for {limits.read_timeout_seconds:g} s (read timeout)")
    return PullError(f"{url}: {error or type(error).__name__}")
