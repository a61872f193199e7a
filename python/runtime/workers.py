"""`--workers N`: N server processes on one port, for more than one core's worth of Python.

The parent forks the workers before any gRPC channel or server exists (gRPC's rule for fork;
servicers are made before it, and make their channels at their first call), and each
binds the port with SO_REUSEPORT so the kernel spreads connections over them. The parent only
supervises: it forwards SIGTERM/SIGINT, and exits when every worker has exited, with the first
non-zero exit code among them. A worker that exits while the others serve takes the whole
group down (the parent then exits with its code, or 1 if that was 0), so that Cloud Run
replaces the instance rather than run it short of workers. Each worker has a process group of
its own, so a terminal's Ctrl-C (or Ctrl-Z) reaches the parent only: a worker sees one
SIGINT, forwarded, never two, which would mean "exit now". SIGHUP ends the parent with the
default action; the workers then drain, as below.

No signal may fall between the cracks of starting up. A SIGTERM or SIGINT that reaches the
parent while it forks waits in the pipe its loop reads, then goes to every worker, the later
ones too, whichever of the parent's threads took it; the workers start with both blocked
until they have handlers of their own. A worker told to stop before its server installed its
handlers (server.serve() does that before it starts serving) has nothing in flight: it exits
0 at once, as a drain would. And each worker asks the kernel for a signal when
the parent dies, which it turns into a SIGTERM of its own, so a parent killed with SIGKILL
leaves no orphans serving on: they drain and exit.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import signal
import socket
import sys
from collections.abc import Callable
from typing import NoReturn

from python.runtime import logs

logger = logging.getLogger("workers")

_STOP_SIGNALS = {signal.SIGTERM, signal.SIGINT}
_PR_SET_PDEATHSIG = 1  # from <linux/prctl.h>


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
    # Every signal the parent acts on reaches its loop through this pipe, written by CPython's
    # C-level handler in whichever thread the kernel gave the signal to. A Python handler runs
    # on the main thread only, once that thread runs Python code again: a SIGTERM that the log
    # thread took while the main thread forked could wait behind os.wait() for ever (4 starts
    # in 300, SIGTERM sent at the first fork, with the machine busy).
    wakeup_read, wakeup_write = os.pipe()
    os.set_blocking(wakeup_write, False)
    signal.set_wakeup_fd(wakeup_write)
    for signum in (*_STOP_SIGNALS, signal.SIGCHLD):
        signal.signal(signum, _written_to_the_pipe)
    parent = os.getpid()
    # Blocked so that each worker starts with them blocked, until it has handlers of its own.
    # Meanwhile the parent's other thread takes them, into the pipe.
    signal.pthread_sigmask(signal.SIG_BLOCK, _STOP_SIGNALS)
    workers: set[int] = set()
    for _ in range(count):
        pid = os.fork()
        if pid == 0:
            _worker(parent, serve, (wakeup_read, wakeup_write))
        workers.add(pid)
    logger.info("started %d workers: %s", count, sorted(workers))
    signal.pthread_sigmask(signal.SIG_UNBLOCK, _STOP_SIGNALS)
    return _supervise(workers, wakeup_read)


def _written_to_the_pipe(_signum: int, _frame: object) -> None:
    """The handler that makes CPython write the signal to the wakeup pipe; _supervise acts."""


def _supervise(workers: set[int], wakeup: int) -> int:
    """Forwards SIGTERM/SIGINT to the workers and reaps them until none is left; the exit code
    is the first non-zero one among theirs (1 for a worker that left on its own with 0)."""
    stopping = False
    # The SIGTERM the parent sent when a worker died already asked the others to drain: the
    # first stop signal from outside after it is not forwarded, or it would be their second,
    # which means "exit now" and cuts their calls. A second one from outside still is.
    absorb_one = False
    exit_code = 0
    while workers:
        # Blocks until a signal comes. The workers are looked at after every read, not per
        # SIGCHLD byte: were the pipe ever full, a lost byte must not leave an exit unseen.
        for signum in os.read(wakeup, 512):
            if signum not in _STOP_SIGNALS:
                continue
            stopping = True
            if absorb_one:
                absorb_one = False
                continue
            for pid in workers:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signum)
        for pid, code in _exited(workers):
            workers.discard(pid)
            if stopping:
                logger.info("worker %d exited with %d", pid, code)
            else:
                logger.error("worker %d exited with %d: stopping the others", pid, code)
                stopping = absorb_one = True
                code = code or 1
                for other in workers:
                    os.kill(other, signal.SIGTERM)
            exit_code = exit_code or code
    return exit_code


def _exited(workers: set[int]) -> list[tuple[int, int]]:
    """The workers that have exited since the last look (one SIGCHLD may stand for several),
    with their exit codes; killed by signal N is 128 + N, as shells say. Only workers are
    reaped: a process the services started before the fork stays theirs to wait for."""
    exited = []
    for pid in workers:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            code = os.waitstatus_to_exitcode(status)
            exited.append((pid, code if code >= 0 else 128 - code))
    return exited


def _worker(parent: int, serve: Callable[[], int], wakeup: tuple[int, int]) -> NoReturn:
    """The life of a forked worker; never returns."""
    # A process group of its own: a terminal's Ctrl-C (SIGINT to the whole foreground group)
    # then reaches the parent only, which forwards it once; had the worker taken it too, the
    # forwarded one would be a second SIGINT, which means "exit now" to the server. Out of the
    # foreground group, its log lines would stop it (SIGTTOU) on a terminal set to `tostop`.
    os.setpgid(0, 0)
    signal.signal(signal.SIGTTOU, signal.SIG_IGN)
    logs.batch_in_worker()  # every way out of here flushes
    # The parent's pipe and SIGCHLD handler are not the worker's: a signal written there would
    # reach the parent's loop, which would forward it to every worker again.
    signal.set_wakeup_fd(-1)
    for fd in wakeup:
        os.close(fd)
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    for signum in _STOP_SIGNALS:
        signal.signal(signum, _exit_before_serving)
    _stop_when_parent_dies(parent)
    # A signal that came while blocked (forwarded, or the parent's death) is handled here.
    signal.pthread_sigmask(signal.SIG_UNBLOCK, _STOP_SIGNALS)
    code = 1
    try:
        code = serve()
    except BaseException:
        logger.exception("worker %d failed", os.getpid())
    finally:
        logs.flush()
        os._exit(code)


def _exit_before_serving(_signum: int, _frame: object) -> None:
    """Until server.serve() replaces it: nothing is served yet, so nothing is left to drain."""
    logs.flush()
    os._exit(0)


def _stop_when_parent_dies(parent: int) -> None:
    """One SIGTERM to this worker when `parent` dies, so that it drains and exits.

    The kernel's parent-death signal is SIGHUP here, not SIGTERM: it comes once for each thread
    of the parent that ends (the parent has a logging thread too), and a second SIGTERM would
    mean "exit now" to the server."""
    stopping = False

    def on_parent_death(_signum: int, _frame: object) -> None:
        nonlocal stopping
        if not stopping:
            stopping = True
            os.kill(os.getpid(), signal.SIGTERM)

    signal.signal(signal.SIGHUP, on_parent_death)
    if sys.platform == "linux":  # prctl is Linux's; elsewhere an orphan serves on
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.prctl(_PR_SET_PDEATHSIG, signal.SIGHUP, 0, 0, 0) != 0:
            logger.warning("prctl(PR_SET_PDEATHSIG): %s", os.strerror(ctypes.get_errno()))
    if os.getppid() != parent:  # it died before the request above: no signal will come
        on_parent_death(signal.SIGHUP, None)
