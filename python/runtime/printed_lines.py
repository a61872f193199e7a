"""`sys.stdout` once the runtime's logs are configured: what code prints goes out as whole lines,
through the same writer as the log lines.

Why: the image runs Python unbuffered (`PYTHONUNBUFFERED=1`, so that nothing printed is lost
when a process dies), and unbuffered `print(a, b)` is four writes: `a`, the separator, `b`, the
newline. Under `--workers` every worker shares the container's stdout, so another worker's JSON
line landed in the middle of a printed one and Cloud Logging received two broken lines. A
buffered stdout instead loses what a worker printed when it ends with `os._exit`. Here each
printed line is handed whole to the log handler (line_writer.py), which writes whole lines in one
write each, batches them with the log lines in order, waits for room on a non-blocking stdout,
and is flushed on every exit path of the runtime's processes. A line is kept until its newline;
a flush (`print(..., flush=True)`, the exit of the process) sends what is kept as a line of
its own, and so does a line that grows past `PrintedLines.MAX_KEPT`. Bytes written to
`sys.stdout.buffer` join the same lines.
"""

from __future__ import annotations

import codecs
import io
import logging
import os
import threading
import weakref
from collections.abc import Buffer
from typing import Protocol


class LineWriter(Protocol):
    """The log handler's side that this writes to (line_writer.LineHandler)."""

    def write(self, level: int, line: str) -> None: ...

    def flush(self) -> None: ...


class PrintedLines(io.TextIOBase):
    """A text stream of whole lines into a LineWriter (the module docstring).

    The text kept until its newline is a list of pieces, joined once when the line ends: joining
    at every write made `print(".", end="")` in a loop quadratic (200,000 dots took 12.7 s,
    holding the GIL). It is bounded: past `MAX_KEPT` characters it goes out as a line without
    waiting (a progress bar drawn with carriage returns never ends its line); and the newline
    that ends text already sent (past the limit, or at a flush) makes no empty line.
    """

    MAX_KEPT = 64 * 1024  # characters; a line that long is past PIPE_BUF, whole only by luck

    def __init__(self, lines: LineWriter, fd: int) -> None:
        super().__init__()
        self._lines = lines
        self._fd = fd
        self._kept: list[str] = []
        self._kept_size = 0
        self._sent_unended = False  # the kept text went out before its newline came
        # Reentrant: a signal handler (the worker's SIGTERM before serving flushes the logs)
        # runs on the thread it interrupted, maybe inside a write that holds this. Lines are
        # handed on out of it, so that a log argument whose str() prints (under the handler's
        # lock) never waits for it while it waits for the handler's.
        self._lock = threading.RLock()
        self.buffer = PrintedBytes(self)
        _open.add(self)

    @property
    def encoding(self) -> str:
        return "utf-8"  # as the handler encodes; what does not encode is replaced

    @property
    def errors(self) -> str:
        return "replace"  # the handler's, for code that encodes with sys.stdout's settings

    def writable(self) -> bool:
        return True

    def fileno(self) -> int:
        return self._fd

    def isatty(self) -> bool:
        return os.isatty(self._fd)

    def reconfigure(self, **_settings: object) -> None:
        """Accepted and ignored (`line_buffering`, `write_through`, `encoding`, ...): lines go
        out whole and soon, in UTF-8, whatever is asked; raising here stopped a service that
        sets `sys.stdout.reconfigure(line_buffering=True)` as containers often do."""

    def write(self, text: str) -> int:
        if not isinstance(text, str):
            raise TypeError(f"write() argument must be str, not {type(text).__name__}")
        *ended, rest = text.split("\n")
        lines: list[str] = []
        with self._lock:
            if ended:
                first = self._take() + ended[0]
                if first or not self._sent_unended:
                    lines.append(first)
                self._sent_unended = False
                lines.extend(ended[1:])
            if rest:
                self._kept.append(rest)
                self._kept_size += len(rest)
                self._sent_unended = False
                if self._kept_size >= self.MAX_KEPT:
                    lines.append(self._take())
                    self._sent_unended = True
        for line in lines:
            self._lines.write(logging.INFO, line)
        return len(text)

    def flush(self) -> None:
        with self._lock:
            kept = self._take()
            if kept:
                self._sent_unended = True
        if kept:
            self._lines.write(logging.INFO, kept)
        self._lines.flush()

    def _take(self) -> str:
        kept, self._kept, self._kept_size = self._kept, [], 0
        return "".join(kept)

    def _after_fork(self) -> None:
        """In a forked child: a lock another thread held at the fork stays held for ever in the
        child, and the kept text is the parent's to write (as line_writer.LineHandler's buffer)."""
        self._lock = threading.RLock()
        self._kept, self._kept_size, self._sent_unended = [], 0, False
        self.buffer._lock = threading.RLock()
        self.buffer._decoder.reset()


class PrintedBytes(io.BufferedIOBase):
    """`sys.stdout.buffer`: bytes that code writes there (libraries do), decoded as UTF-8 (a
    character may be split between writes; what does not decode is replaced) into the same
    lines, where the attribute's absence raised AttributeError in the caller."""

    def __init__(self, text: PrintedLines) -> None:
        super().__init__()
        self._text = text
        self._decoder = codecs.getincrementaldecoder("utf-8")("replace")
        self._lock = threading.RLock()  # the decoder's state; reentrant, as PrintedLines._lock

    def writable(self) -> bool:
        return True

    def fileno(self) -> int:
        return self._text.fileno()

    def isatty(self) -> bool:
        return self._text.isatty()

    def write(self, data: Buffer) -> int:
        size = memoryview(data).nbytes
        with self._lock:
            text = self._decoder.decode(bytes(data))
        self._text.write(text)  # out of the lock, as PrintedLines.write's lines
        return size

    def flush(self) -> None:
        self._text.flush()


# The streams made in this process, for _after_fork (weakly: tests make many).
_open: weakref.WeakSet[PrintedLines] = weakref.WeakSet()


def _after_fork() -> None:
    for printed in list(_open):
        printed._after_fork()


os.register_at_fork(after_in_child=_after_fork)
