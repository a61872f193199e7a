"""`sys.stdout` once the runtime's logs are configured: what code prints goes out as whole lines,
through the same writer as the log lines.

Why: the image runs Python unbuffered (`PYTHONUNBUFFERED=1`, so that nothing printed is lost
when a process dies), and unbuffered `print(a, b)` is four writes: `a`, the separator, `b`, the
newline. Under `--workers` every worker shares the container's stdout, so another worker's JSON
line landed in the middle of a printed one and Cloud Logging received two broken lines. A
buffered stdout instead loses what a worker printed when it ends with `os._exit`. Here each
printed line is handed whole to the log handler (logs.py), which writes whole lines in one
write each, batches them with the log lines in order, waits for room on a non-blocking stdout,
and is flushed on every exit path of the runtime's processes. A line is kept until its newline;
a flush (`print(..., flush=True)`, the exit of the process) sends what is kept as a line of
its own.
"""

from __future__ import annotations

import io
import logging
import os
import threading
from typing import Protocol


class LineWriter(Protocol):
    """The log handler's side that this writes to (logs._LineHandler)."""

    def write(self, level: int, line: str) -> None: ...

    def flush(self) -> None: ...


class PrintedLines(io.TextIOBase):
    """A text stream of whole lines into a LineWriter (the module docstring)."""

    def __init__(self, lines: LineWriter, fd: int) -> None:
        super().__init__()
        self._lines = lines
        self._fd = fd
        self._partial = ""
        # print() writes its pieces one by one: a line two threads build at once is theirs to
        # order, but the kept text must not be lost between them.
        self._lock = threading.Lock()

    @property
    def encoding(self) -> str:
        return "utf-8"  # as the handler encodes; what does not encode is replaced

    def writable(self) -> bool:
        return True

    def fileno(self) -> int:
        return self._fd

    def isatty(self) -> bool:
        return os.isatty(self._fd)

    def write(self, text: str) -> int:
        if not isinstance(text, str):
            raise TypeError(f"write() argument must be str, not {type(text).__name__}")
        with self._lock:
            *lines, self._partial = (self._partial + text).split("\n")
        for line in lines:
            self._lines.write(logging.INFO, line)
        return len(text)

    def flush(self) -> None:
        with self._lock:
            partial, self._partial = self._partial, ""
        if partial:
            self._lines.write(logging.INFO, partial)
        self._lines.flush()
