"""A service's `main`: `app.run("name", services)` is the whole of it.

The runtime owns what every Cloud Run gRPC service needs and none should write again: the
flags, $PORT, health for exactly the services registered, reflection, logs with trace
correlation (JSON for Cloud Logging, text at a terminal), the auth modes, message limits,
keepalive, the SIGTERM drain and --workers.

Listens on [::]:$PORT (8080 when PORT is unset), plaintext HTTP/2 (h2c), because on Cloud Run
TLS ends at Google's front end and the container serves h2c on the port Cloud Run names in
$PORT. See server.py for a process's life from start to SIGTERM, and workers.py for --workers.
A service adds flags of its own with absl's `flags.DEFINE_*` in its main module.
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import socket
import sys
from collections.abc import Callable, Sequence
from typing import NoReturn

from absl import app, flags

from python.runtime import invoker_auth, logs, server, stream_limits, workers
from python.runtime.config import MIB, ServerConfig
from python.runtime.server import Registration

_PORT = flags.DEFINE_integer(
    "port", None, "Port to listen on; default $PORT, else 8080. 0 picks a free port."
)
_GRACE_SECONDS = flags.DEFINE_float(
    "grace_seconds", 8.0, "After SIGTERM, how long in-flight calls may run (Cloud Run allows 10 s)."
)
_REFLECTION = flags.DEFINE_bool("reflection", True, "Serve gRPC server reflection.")
_LOG_FORMAT = flags.DEFINE_enum(
    "log_format",
    logs.AUTO,
    logs.FORMATS,
    "json for Cloud Logging, text for people; auto: text when stdout is a terminal, else json. "
    "Text is coloured only on a terminal, without $NO_COLOR, with $TERM not dumb.",
)
_RPC_LOGS = flags.DEFINE_enum(
    "rpc_logs", "all", ["all", "errors", "none"], "Calls that get a log line: all, not OK, none."
)
_PROJECT = flags.DEFINE_string(
    "project",
    os.environ.get("GOOGLE_CLOUD_PROJECT") or os.environ.get("CLOUD_PROJECT"),
    "Google Cloud project, to link logs to traces; default $GOOGLE_CLOUD_PROJECT.",
)
_MAX_RECEIVE_MIB = flags.DEFINE_float("max_receive_message_mib", 4, "Largest request message.")
_MAX_SEND_MIB = flags.DEFINE_float("max_send_message_mib", 4, "Largest response message.")
_MAX_STREAM_MESSAGES = flags.DEFINE_integer(
    "max_stream_messages",
    stream_limits.DEFAULT_MAX_MESSAGES,
    "Most messages a client may send on one request stream; past it: RESOURCE_EXHAUSTED.",
)
_MAX_STREAM_MIB = flags.DEFINE_float(
    "max_stream_mib",
    stream_limits.DEFAULT_MAX_BYTES / MIB,
    "Most bytes (MiB) a client may send on one request stream; past it: RESOURCE_EXHAUSTED.",
)
_MAX_CONCURRENT_STREAMS = flags.DEFINE_integer(
    "max_concurrent_streams", 100, "Concurrent calls per connection (match Cloud Run concurrency)."
)
_MIN_PING_INTERVAL = flags.DEFINE_float(
    "min_client_ping_interval_seconds", 10, "Shortest interval of client keepalive pings allowed."
)
_MAX_CONNECTION_AGE = flags.DEFINE_float(
    "max_connection_age_seconds", None, "Close connections this old (GOAWAY); unset: never."
)
_AUTH_MODE = flags.DEFINE_enum(
    "auth_mode",
    invoker_auth.NONE,
    invoker_auth.MODES,
    "none; cloud-run: trust Cloud Run's IAM check (never with --allow-unauthenticated) and "
    "read the caller from the header it verified; verify: check tokens here.",
)
_AUDIENCES = flags.DEFINE_list("audiences", [], "verify: accepted token audiences (service URLs).")
_ALLOWED_INVOKERS = flags.DEFINE_list(
    "allowed_invokers", [], "Emails that may call; empty: any authenticated caller."
)
_REQUIRE_VERIFIED_EMAIL = flags.DEFINE_bool(
    "require_verified_email", False, "Refuse tokens whose email_verified is not true."
)
_GOOGLE_CERTS_URL = flags.DEFINE_string(
    "google_certs_url", invoker_auth.GOOGLE_CERTS_URL, "verify: where Google's signing certs are."
)
_TLS_CERT = flags.DEFINE_string(
    "tls_cert_file", None, "PEM certificate chain: serve TLS (local tests; Cloud Run wants h2c)."
)
_TLS_KEY = flags.DEFINE_string("tls_key_file", None, "PEM private key for --tls_cert_file.")
_WORKERS = flags.DEFINE_integer("workers", 1, "Server processes sharing the port.", lower_bound=1)

DEFAULT_PORT = 8080
EXIT_USAGE = 2


class UsageError(Exception):
    """Bad input from the command line or the environment: one line on stderr, exit 2. A
    service's `services` function raises it about its own flags; any other exception there is
    a bug, and ends the process with its traceback."""


def listen_port() -> int:
    if _PORT.value is not None:
        port, source = _PORT.value, "--port"
    else:
        raw = os.environ.get("PORT", str(DEFAULT_PORT))
        source = f"PORT={raw!r}"
        try:
            port = int(raw)
        except ValueError:
            raise UsageError(f"{source} is not a port number") from None
    if not 0 <= port <= 65535:
        raise UsageError(f"{source} is out of range 0-65535")
    return port


def check_port_free(port: int) -> None:
    """Fails with the OS's reason when the port is taken. gRPC would say it only in a log line
    of its own, and with SO_REUSEPORT it would even share the port with another server."""
    if port == 0:
        return
    try:
        with socket.create_server(("::", port), family=socket.AF_INET6, dualstack_ipv6=True):
            pass
    except OSError as error:
        raise UsageError(f"cannot listen on [::]:{port}: {error.strerror}") from None


def config_from_flags(port: int) -> ServerConfig:
    return ServerConfig(
        port=port,
        grace_seconds=_GRACE_SECONDS.value,
        reflection=_REFLECTION.value,
        project=_PROJECT.value,
        rpc_logs=_RPC_LOGS.value,
        max_receive_message_bytes=round(_MAX_RECEIVE_MIB.value * MIB),
        max_send_message_bytes=round(_MAX_SEND_MIB.value * MIB),
        max_concurrent_streams=_MAX_CONCURRENT_STREAMS.value,
        stream_limit=stream_limits.StreamLimit(
            messages=_MAX_STREAM_MESSAGES.value, bytes=round(_MAX_STREAM_MIB.value * MIB)
        ),
        min_client_ping_interval_seconds=_MIN_PING_INTERVAL.value,
        max_connection_age_seconds=_MAX_CONNECTION_AGE.value,
        tls_cert_file=_TLS_CERT.value,
        tls_key_file=_TLS_KEY.value,
        auth=invoker_auth.Policy(
            mode=_AUTH_MODE.value,
            audiences=tuple(_AUDIENCES.value),
            allowed_invokers=tuple(_ALLOWED_INVOKERS.value),
            require_verified_email=_REQUIRE_VERIFIED_EMAIL.value,
            certs_url=_GOOGLE_CERTS_URL.value,
        ),
        reuse_port=_WORKERS.value > 1,
    )


def serve_one(name: str, config: ServerConfig, services: Sequence[Registration]) -> int:
    try:
        asyncio.run(server.serve(name, config, services))
    except server.BindError as error:
        raise UsageError(str(error)) from None
    return 0


def main(name: str, make_services: Callable[[], Sequence[Registration]], argv: list[str]) -> int:
    if len(argv) > 1:
        raise UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
    logs.configure(_LOG_FORMAT.value)
    port = listen_port()
    if bool(_TLS_CERT.value) != bool(_TLS_KEY.value):
        raise UsageError("--tls_cert_file and --tls_key_file go together")
    for path in filter(None, (_TLS_CERT.value, _TLS_KEY.value)):
        if not os.access(path, os.R_OK):
            raise UsageError(f"cannot read {path}")
    try:
        config = config_from_flags(port)
    except ValueError as error:
        raise UsageError(str(error)) from None
    check_port_free(port)
    # Once, before forking: the workers share what the servicers loaded (see run()).
    services = make_services()
    if _WORKERS.value == 1:
        return serve_one(name, config, services)
    with workers.reserve_port(port) as reserved:
        config = dataclasses.replace(config, port=reserved.getsockname()[1])
        return workers.run(_WORKERS.value, lambda: serve_one(name, config, services))


def parse_flags(argv: list[str]) -> list[str]:
    try:
        return flags.FLAGS(argv)
    except flags.Error as error:
        print(f"server: {error}", file=sys.stderr)
        sys.exit(EXIT_USAGE)


def run(name: str, services: Callable[[], Sequence[Registration]]) -> NoReturn:
    """Parses the flags, then serves what `services()` returns: (servicer, add_to_server)
    pairs, e.g. `[(PingServicer(), ping_pb2_grpc.add_PingServiceServicer_to_server)]`, until
    SIGTERM. `name` names the service in the log. Bad input: one line on stderr, exit 2.

    `services()` runs once, in the parent before `--workers` forks, so that what servicers
    load (a database, a model) is shared by the workers. gRPC must not run before a fork: a
    servicer makes its channels, threads and asyncio objects at its first call, not when it
    is made (as the ping service's relay channel)."""
    try:
        app.run(lambda argv: main(name, services, argv), flags_parser=parse_flags)
    except UsageError as error:
        print(f"server: {error}", file=sys.stderr)
        sys.exit(EXIT_USAGE)
