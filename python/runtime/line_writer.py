"""The writer behind the runtime's logs (logs.py) and printed lines (printed_lines.py): whole
lines to stdout, in batches, that workers sharing the pipe cannot tear, nor a non-blocking stdout
lose.
"""

from __future__ import annotations

import json
import logging
import os
import select
import threading
import time
from collections.abc import Callable

# A line in the buffer: its text, or how to make it (the function and its arguments).
Line = str | tuple[Callable[..., str], tuple[object, ...]]


class LineHandler(logging.Handler):
    """Writes whole lines to a file descriptor, a batch at a time.

    A write() per line costs more than a small RPC does (the reader of the pipe must wake), so
    lines gather for up to `FLUSH_SECONDS` or `FLUSH_LINES`, and go out in writes of whole lines
    no larger than PIPE_BUF (unless one line is), which the kernel keeps whole even when workers
    share the pipe. A line may wait as its parts (`write_later`) and be made when its batch goes
    out, in a run with the batch's other lines: the bench's logs=all went from 1.17-1.19x of a
    bare server's CPU per call to 1.12-1.16x with it (docs/observability-cost.md).
    Errors go out at once (warnings wait: a client can cause one per call), and every exit
    path flushes. A process forked from one that has this handler writes each line at once
    (`_after_fork`): a `multiprocessing` child ends with os._exit, which skips every flush, so
    a batch there would be lost; the runtime's own workers batch again (`batch_in_worker`).
    """

    FLUSH_SECONDS = 0.05
    FLUSH_LINES = 16
    FLUSH_BYTES = select.PIPE_BUF

    def __init__(self, fd: int) -> None:
        super().__init__()
        self._fd = fd
        self._buffer: list[Line] = []
        self._pending = threading.Event()
        self._batching = False
        self._set_process()
        self.batch()
        os.register_at_fork(after_in_child=self._after_fork)

    def _set_process(self) -> None:
        self.pid = os.getpid()
        self.pid_member = f'", "pid": {self.pid}'  # closes the time before it (JsonLines)

    def _after_fork(self) -> None:
        """In a forked child: lines go out one write each, until `batch` is called. Most forked
        children (`multiprocessing`'s, with its default fork start method) end with os._exit,
        which runs no flush: any line still in a batch would be lost. The parent's buffered
        lines are the parent's to write."""
        self._set_process()
        self.createLock()
        self._buffer = []
        self._pending = threading.Event()
        self._batching = False

    def batch(self) -> None:
        """Batches this process's lines, written by a thread of its own (threads do not survive
        fork): for a process whose every exit path flushes, as the runtime's workers do."""
        if not self._batching:
            self._batching = True
            threading.Thread(target=self._flush_periodically, daemon=True, name="log-flush").start()

    def _flush_periodically(self) -> None:
        while True:
            self._pending.wait()
            time.sleep(self.FLUSH_SECONDS)
            self.flush()

    def emit(self, record: logging.LogRecord) -> None:
        try:
            line = self.format(record)
        except Exception:
            self.handleError(record)
            return
        self.write(record.levelno, line)

    def write(self, level: int, line: str) -> None:
        self._add(level, line)

    def write_later(self, level: int, make: Callable[..., str], *args: object) -> None:
        """Buffers the line `make(*args)` makes, made when its batch is written."""
        self._add(level, (make, args))

    def _add(self, level: int, line: Line) -> None:
        with self.lock:
            first = not self._buffer
            self._buffer.append(line)
            if (
                level >= logging.ERROR
                or not self._batching
                or len(self._buffer) >= self.FLUSH_LINES
            ):
                self._flush_locked()
            elif first:
                self._pending.set()  # once per batch: a set() per line cost a lock round

    def flush(self) -> None:
        with self.lock:
            self._flush_locked()

    def _flush_locked(self) -> None:
        lines, self._buffer = self._buffer, []
        self._pending.clear()
        batch: list[bytes] = []
        size = 0
        for line in lines:
            data = (_made(line) + "\n").encode("utf-8", "replace")
            if batch and size + len(data) > self.FLUSH_BYTES:
                self._write(b"".join(batch))  # whole lines, PIPE_BUF at most
                batch, size = [], 0
            batch.append(data)
            size += len(data)
        if batch:
            self._write(b"".join(batch))

    def _write(self, data: bytes) -> None:
        """Writes all of `data`, as blocking stdout would, even when stdout is non-blocking: a
        parent may set O_NONBLOCK on the pipe or socket it shares with this process, and then a
        write to a full pipe fails with EAGAIN or writes part of a line. Dropping the rest lost
        lines and glued the next line onto the torn one; here the writer waits for room. Any
        other error (EPIPE, EBADF: stdout is gone; EIO, ENOSPC) leaves nowhere to report it,
        and retrying could block the server for ever: the rest of `data` is dropped."""
        while data:  # one write() in practice; loop only on a short write
            try:
                data = data[os.write(self._fd, data) :]
            except BlockingIOError:
                _wait_writable(self._fd)
            except OSError:
                return


def _wait_writable(fd: int) -> None:
    """Until `fd` can take a write, or has failed (the write after says how)."""
    poller = select.poll()
    poller.register(fd, select.POLLOUT)
    poller.poll()


def _made(line: Line) -> str:
    if isinstance(line, str):
        return line
    make, args = line
    try:
        made = make(*args)
        if not isinstance(made, str):
            raise TypeError(f"a line made as {type(made).__name__}, not str")
        return made
    except Exception as error:  # a bug: the batch's other lines still go out, and this says so
        return json.dumps({"severity": "ERROR", "message": f"a log line failed: {error!r}"})
