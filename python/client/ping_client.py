"""Calls PingService. The channel helpers are the ones other services in the monorepo reuse.

Cloud Run serves gRPC over TLS on port 443 at its front end, so a bare host means host:443 with
TLS; `insecure` is for local runs against the plaintext h2c server.
"""

from __future__ import annotations

import re

import grpc
from ping.v1 import ping_pb2, ping_pb2_grpc

DEFAULT_TLS_PORT = 443
DEFAULT_TIMEOUT_SECONDS = 30.0

# host, [v6 host], with an optional :port.
_TARGET = re.compile(r"^(?P<host>\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9._-]+)(?::(?P<port>\d{1,5}))?$")


def parse_target(server: str) -> str:
    """`host[:port]` -> `host:port`, port 443 when omitted. ValueError when malformed."""
    match = _TARGET.match(server)
    if not match or (match["port"] and not 0 < int(match["port"]) <= 65535):
        raise ValueError(f"--server must be host[:port], got {server!r}")
    return f"{match['host']}:{match['port'] or DEFAULT_TLS_PORT}"


def open_channel(server: str, *, insecure: bool) -> grpc.Channel:
    target = parse_target(server)
    if insecure:
        return grpc.insecure_channel(target)
    return grpc.secure_channel(target, grpc.ssl_channel_credentials())


def send(
    channel: grpc.Channel, message: str, timeout: float = DEFAULT_TIMEOUT_SECONDS
) -> ping_pb2.Response:
    stub = ping_pb2_grpc.PingServiceStub(channel)
    return stub.Send(ping_pb2.Request(message=message), timeout=timeout)
