"""Channels to the kit's services as Cloud Run serves them; importable by any service here.

Cloud Run serves gRPC over TLS on port 443 at its front end, so a bare host means host:443 with
TLS and an ID token for `https://<host>`. Local runs use `insecure` (plaintext h2c, no token).

Every channel carries a retry policy for UNAVAILABLE, the status a call gets when Cloud Run
scales in and closes its connection with GOAWAY, or while an instance restarts (unless asked
not to, as the server's relay does: its caller retries already); and keepalive pings every 30 s
during calls, above what the kit's server accepts (10 s).
"""

from __future__ import annotations

import dataclasses
import json
import re
import urllib.parse

import grpc

from python.channels import auth, client_tracing

DEFAULT_TLS_PORT = 443
# The header a token goes in unless asked otherwise (Connection's `auth` hides the module there).
AUTHORIZATION = auth.AUTHORIZATION
DEFAULT_TIMEOUT_SECONDS = 30.0
KEEPALIVE_SECONDS = 30

# host, or [v6 address], with an optional :port.
_TARGET = re.compile(r"^(?P<host>\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9._-]+)(?::(?P<port>\d{1,5}))?$")

RETRY_SERVICE_CONFIG = json.dumps(
    {
        "methodConfig": [
            {
                "name": [{}],  # every method of every service
                "retryPolicy": {
                    "maxAttempts": 5,
                    "initialBackoff": "0.2s",
                    "maxBackoff": "5s",
                    "backoffMultiplier": 2,
                    "retryableStatusCodes": ["UNAVAILABLE"],
                },
            }
        ]
    }
)


@dataclasses.dataclass(frozen=True)
class Connection:
    """How to reach a server: the flags of the client, as data."""

    server: str
    insecure: bool = False
    ca_cert: str | None = None
    authority: str | None = None
    auth: bool | None = None  # None: on for TLS, off for insecure
    audience: str | None = None  # None: https://<host>
    token_file: str | None = None
    token_header: str = AUTHORIZATION

    @property
    def target(self) -> str:
        host, port = split_server(self.server)
        return f"{host}:{port}"

    @property
    def default_audience(self) -> str:
        """`https://<host>`, no port: Cloud Run rejects an audience with one."""
        return f"https://{split_server(self.server)[0]}"


def split_server(server: str) -> tuple[str, int]:
    """`host[:port]` -> (host, port), port 443 when omitted. ValueError when malformed."""
    match = _TARGET.match(server)
    if not match or (match["port"] and not 0 < int(match["port"]) <= 65535):
        raise ValueError(f"--server must be host[:port], got {server!r}")
    return match["host"], int(match["port"] or DEFAULT_TLS_PORT)


def connection_to_url(url: str, token_header: str = auth.AUTHORIZATION) -> Connection:
    """A Connection to a Cloud Run service's URL, with an ID token for that URL.

    `https://HOST[:PORT]` is TLS, as on Cloud Run. `http://HOST[:PORT]` is h2c, and only to
    loopback (gRPC's local credentials refuse any other peer, so the token never crosses a
    network in plaintext): a local Cloud Run's `http://SERVICE.PROJECT.localhost:PORT` is
    dialled at 127.0.0.1 (RFC 6761: every name under .localhost is loopback, which not every
    resolver knows), with the URL's host as :authority. ValueError when malformed.
    """
    parts = urllib.parse.urlsplit(url)
    try:
        port = parts.port
    except ValueError:
        port = -1
    if (
        parts.scheme not in ("http", "https")
        or not parts.hostname
        or port == -1
        or parts.path not in ("", "/")
        or parts.query
        or parts.username
    ):
        raise ValueError(f"not an http(s)://HOST[:PORT] URL: {url!r}")
    insecure = parts.scheme == "http"
    port = port or (80 if insecure else DEFAULT_TLS_PORT)
    if parts.hostname.endswith(".localhost"):
        host = "127.0.0.1"
    elif ":" in parts.hostname:
        host = f"[{parts.hostname}]"  # urlsplit drops an IPv6 literal's brackets
    else:
        host = parts.hostname
    return Connection(
        server=f"{host}:{port}",
        insecure=insecure,
        authority=parts.netloc if parts.hostname.endswith(".localhost") else None,
        auth=True,
        audience=f"{parts.scheme}://{parts.netloc}",
        token_header=token_header,
    )


def channel_options(connection: Connection, retries: bool = True) -> list[tuple[str, object]]:
    """`retries=False` for a hop inside a call whose caller retries already: attempts at both
    ends would multiply."""
    options: list[tuple[str, object]] = [
        ("grpc.keepalive_time_ms", KEEPALIVE_SECONDS * 1000),
        ("grpc.keepalive_timeout_ms", 10_000),
    ]
    if retries:
        options += [("grpc.service_config", RETRY_SERVICE_CONFIG), ("grpc.enable_retries", 1)]
    else:
        options.append(("grpc.enable_retries", 0))
    if connection.authority:
        options.append(("grpc.default_authority", connection.authority))
    return options


def call_credentials(connection: Connection) -> grpc.CallCredentials | None:
    use_auth = (not connection.insecure) if connection.auth is None else connection.auth
    if connection.token_file:
        return auth.token_file_credentials(connection.token_file)
    if use_auth:
        audience = connection.audience or connection.default_audience
        return auth.id_token_credentials(audience, connection.token_header)
    return None


def channel_credentials(connection: Connection) -> grpc.ChannelCredentials | None:
    """TLS (with call credentials when auth is on), or None for plaintext h2c."""
    per_call = call_credentials(connection)
    if connection.insecure:
        if per_call is not None:
            # gRPC sends call credentials only over secure channels; local channels count as
            # such, so a token can still reach a plaintext server on this machine.
            return grpc.composite_channel_credentials(grpc.local_channel_credentials(), per_call)
        return None
    root_certificates = None
    if connection.ca_cert:
        try:
            with open(connection.ca_cert, "rb") as pem:
                root_certificates = pem.read()
        except OSError as error:
            message = f"cannot read --ca_cert {connection.ca_cert}: {error.strerror}"
            raise auth.AuthError(message) from None
    tls = grpc.ssl_channel_credentials(root_certificates)
    return tls if per_call is None else grpc.composite_channel_credentials(tls, per_call)


def open_channel(connection: Connection) -> grpc.Channel:
    """One channel, to be reused for every call. Raises ValueError or AuthError on bad input."""
    credentials = channel_credentials(connection)
    options = channel_options(connection)
    if credentials is None:
        return grpc.insecure_channel(connection.target, options)
    return grpc.secure_channel(connection.target, credentials, options)


def open_aio_channel(
    connection: Connection, credentials: grpc.ChannelCredentials | None, retries: bool = True
) -> grpc.aio.Channel:
    """The same channel for asyncio code (the server's relay), with credentials made by
    channel_credentials() (which may block on the network, so the caller chooses where).
    Its calls make client spans when the server exports telemetry (client_tracing.py)."""
    options = channel_options(connection, retries)
    interceptors = client_tracing.interceptors() or None
    if credentials is None:
        return grpc.aio.insecure_channel(connection.target, options, interceptors=interceptors)
    return grpc.aio.secure_channel(
        connection.target, credentials, options, interceptors=interceptors
    )
