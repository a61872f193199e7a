"""`--workers N`: N server processes on one port, for more than one core's worth of Python.

The parent forks the workers before any gRPC object exists (gRPC's rule for fork), and each
binds the port with SO_REUSEPORT so the kernel spreads connections over them. The parent only
supervises: it forwards SIGTERM/SIGINT, and exits when every worker has exited, with the first
non-zero exit code among them. A worker that dies while the others serve takes the whole
group down, so that Cloud Run replaces the instance rather than run it short of workers.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import socket
from collections.abc import Callable

from python.server import logs

logger = logging.getLogger("workers")


def reserve_port(port: int) -> socket.socket:
    """A socket bound (not listening) with SO_REUSEPORT, holding `port` (or a free one, for 0)
    for the workers until they have bound it too."""
    sock = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
    sock.bind(("::", port))
    return sock


def run(count: int, serve: Callable[[], int]) -> int:
    """Runs `serve` in `count` forked processes; returns the exit code for the parent."""
    workers: set[int] = set()
    stopping = False

    def forward(signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True
        for pid in workers:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signum)

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    for _ in range(count):
        pid = os.fork()
        if pid == 0:
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            signal.signal(signal.SIGINT, signal.default_int_handler)
            code = 1
            try:
                code = serve()
            except BaseException:
                logger.exception("worker %d failed", os.getpid())
            finally:
                logs.flush()
                os._exit(code)
        workers.add(pid)
    logger.info("started %d workers: %s", count, sorted(workers))

    exit_code = 0
    while workers:
        pid, status = os.wait()
        workers.discard(pid)
        code = os.waitstatus_to_exitcode(status)
        code = code if code >= 0 else 128 - code  # killed by signal N: 128 + N, as shells say
        if not stopping:
            logger.error("worker %d exited with %d: stopping the others", pid, code)
            stopping = True
            code = code or 1
            for other in workers:
                os.kill(other, signal.SIGTERM)
        exit_code = exit_code or code
    return exit_code
