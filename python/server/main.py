"""The kit's gRPC server: `bazel run //python/server`.

Listens on [::]:$PORT (8080 when PORT is unset), plaintext HTTP/2 (h2c), because on Cloud Run
TLS ends at Google's front end and the container serves h2c on the port Cloud Run names in
$PORT. SIGTERM (Cloud Run's notice before shutdown) or Ctrl-C stops it after in-flight calls.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sys

import grpc
from absl import app, flags
from ping.v1 import ping_pb2_grpc

from python.server.ping_servicer import PingServicer

_PORT = flags.DEFINE_integer(
    "port", None, "Port to listen on; default $PORT, else 8080. 0 picks a free port."
)
_GRACE_SECONDS = flags.DEFINE_float(
    "grace_seconds", 8.0, "On SIGTERM, how long in-flight calls may run before they are cancelled."
)

DEFAULT_PORT = 8080
EXIT_USAGE = 2


class UsageError(Exception):
    """Bad input from the command line or the environment: one line on stderr, exit 2."""


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


async def serve(port: int, grace_seconds: float) -> None:
    # SO_REUSEPORT off: a second server on a busy port must fail, not silently share it.
    server = grpc.aio.server(options=[("grpc.so_reuseport", 0)])
    ping_pb2_grpc.add_PingServiceServicer_to_server(PingServicer(), server)
    address = f"[::]:{port}"
    try:
        bound_port = server.add_insecure_port(address)
    except RuntimeError:
        raise UsageError(f"cannot listen on {address}: the port is in use or not allowed") from None
    await server.start()
    print(f"ping server listening on [::]:{bound_port}", flush=True)

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    await stop.wait()
    await server.stop(grace_seconds)


def main(argv: list[str]) -> int:
    if len(argv) > 1:
        raise UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
    port = listen_port()
    check_port_free(port)
    asyncio.run(serve(port, _GRACE_SECONDS.value))
    return 0


def run() -> None:
    try:
        app.run(main, flags_parser=parse_flags)
    except UsageError as error:
        print(f"server: {error}", file=sys.stderr)
        sys.exit(EXIT_USAGE)


def parse_flags(argv: list[str]) -> list[str]:
    try:
        return flags.FLAGS(argv)
    except flags.Error as error:
        print(f"server: {error}", file=sys.stderr)
        sys.exit(EXIT_USAGE)


if __name__ == "__main__":
    run()
