"""Everything the server is started with, and the gRPC channel arguments that follow from it."""

from __future__ import annotations

import dataclasses

from python.runtime.invoker_auth import Policy
from python.runtime.stream_limits import StreamLimit

MIB = 1024 * 1024


@dataclasses.dataclass(frozen=True)
class ServerConfig:
    port: int
    grace_seconds: float = 8.0
    reflection: bool = True
    project: str | None = None
    rpc_logs: str = "all"  # which calls get a log line: all, errors (not OK), none
    max_receive_message_bytes: int = 4 * MIB
    max_send_message_bytes: int = 4 * MIB
    max_concurrent_streams: int = 100
    # What a client may send on one request stream (stream_limits.py).
    stream_limit: StreamLimit = dataclasses.field(default_factory=StreamLimit)
    # Cloud Run's front end pings idle connections; gRPC's default (5 min between pings without
    # calls, else GOAWAY too_many_pings) would close them.
    min_client_ping_interval_seconds: float = 10.0
    max_connection_age_seconds: float | None = None
    auth: Policy = dataclasses.field(default_factory=Policy)
    # PEM files for TLS on the port: local tests only. On Cloud Run the front end ends TLS and
    # the container serves plaintext h2c.
    tls_cert_file: str | None = None
    tls_key_file: str | None = None
    # Several processes share the port: only then may the kernel spread connections over them.
    reuse_port: bool = False

    def __post_init__(self) -> None:
        for flag, value in (
            ("--max_receive_message_mib", self.max_receive_message_bytes),
            ("--max_send_message_mib", self.max_send_message_bytes),
            ("--max_stream_messages", self.stream_limit.messages),
            ("--max_stream_mib", self.stream_limit.bytes),
        ):
            if value <= 0:
                raise ValueError(f"{flag} must be more than 0")

    def channel_options(self) -> list[tuple[str, int]]:
        options = [
            ("grpc.so_reuseport", int(self.reuse_port)),
            ("grpc.max_receive_message_length", self.max_receive_message_bytes),
            ("grpc.max_send_message_length", self.max_send_message_bytes),
            ("grpc.max_concurrent_streams", self.max_concurrent_streams),
            ("grpc.keepalive_permit_without_calls", 1),
            (
                "grpc.http2.min_ping_interval_without_data_ms",
                round(self.min_client_ping_interval_seconds * 1000),
            ),
        ]
        if self.max_connection_age_seconds:
            age_ms = round(self.max_connection_age_seconds * 1000)
            # Clients reconnect (to any instance) when a connection ages out; in-flight calls
            # get as long again to finish.
            options += [
                ("grpc.max_connection_age_ms", age_ms),
                ("grpc.max_connection_age_grace_ms", age_ms),
            ]
        return options
