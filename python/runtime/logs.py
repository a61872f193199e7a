"""Logs on stdout: JSON lines for Cloud Logging, or text lines for people at a terminal.

Cloud Run forwards a container's stdout to Cloud Logging, which lifts `severity`, `message`,
`time`, `logging.googleapis.com/trace` and `logging.googleapis.com/labels` out of each JSON
line. The format `AUTO` (the default of `--log_format`) picks JSON when stdout is not a terminal,
as on Cloud Run or in a pipe or file, and text when it is; `JSON` and `TEXT` force one. Text
colours the severity only when stdout is a terminal, `NO_COLOR` is unset or empty
(https://no-color.org) and `TERM` is not `dumb`, even when `TEXT` was asked for.
"""

from __future__ import annotations

import datetime
import json
import logging
import os
import select
import sys
import threading
import time

# The formats configure() takes.
AUTO, JSON, TEXT = "auto", "json", "text"
FORMATS = (AUTO, JSON, TEXT)

# Extra record attributes that become top-level JSON fields (set with logger.info(..., extra=)).
FIELDS_ATTRIBUTE = "fields"
_SEVERITY = {
    logging.DEBUG: "DEBUG",
    logging.INFO: "INFO",
    logging.WARNING: "WARNING",
    logging.ERROR: "ERROR",
    logging.CRITICAL: "CRITICAL",
}


def _labels() -> dict[str, str]:
    """Which Cloud Run service and revision wrote the line, when Cloud Run says."""
    names = {"K_SERVICE": "service", "K_REVISION": "revision", "K_CONFIGURATION": "configuration"}
    return {label: os.environ[var] for var, label in names.items() if os.environ.get(var)}


class LineFormatter(logging.Formatter):
    """Formats a record, or a line given by its parts (`line`), which `write` uses to log
    without building a LogRecord."""

    def format(self, record: logging.LogRecord) -> str:
        message = record.getMessage()
        if record.exc_info:
            # Cloud Error Reporting picks up a stack trace found in the message.
            message = f"{message}\n{self.formatException(record.exc_info)}"
        fields = getattr(record, FIELDS_ATTRIBUTE, {})
        return self.line(record.levelno, message, record.created, record.process, fields)

    def line(
        self, level: int, message: str, created: float, pid: int | None, fields: dict[str, object]
    ) -> str:
        raise NotImplementedError


# The C encoder, made once: json.dumps(..., default=str) builds a new encoder at every call.
_encode_json = json.JSONEncoder(default=str).encode


class JsonFormatter(LineFormatter):
    def __init__(self) -> None:
        super().__init__()
        self._labels = _labels()

    def line(
        self, level: int, message: str, created: float, pid: int | None, fields: dict[str, object]
    ) -> str:
        entry: dict[str, object] = {
            "severity": _SEVERITY.get(level, "DEFAULT"),
            "message": message,
            "time": datetime.datetime.fromtimestamp(created, datetime.UTC).isoformat(),
            "pid": pid,
            **fields,
        }
        if self._labels:
            entry["logging.googleapis.com/labels"] = self._labels
        return _encode_json(entry)


# SGR codes for the severity in coloured text; levels not listed stay plain.
_COLOURS = {
    logging.DEBUG: "2",  # dim
    logging.INFO: "32",  # green
    logging.WARNING: "33",  # yellow
    logging.ERROR: "31",  # red
    logging.CRITICAL: "1;31",  # bold red
}


def colour_supported(fd: int) -> bool:
    """Whether text written to `fd` may carry ANSI colour: a terminal, no `NO_COLOR`, not a
    `dumb` one."""
    return os.isatty(fd) and not os.environ.get("NO_COLOR") and os.environ.get("TERM") != "dumb"


class TextFormatter(LineFormatter):
    def __init__(self, colour: bool = False) -> None:
        super().__init__()
        self._colour = colour

    def _severity(self, level: int) -> str:
        name = logging.getLevelName(level)
        code = _COLOURS.get(level) if self._colour else None
        return f"\033[{code}m{name}\033[0m" if code else name

    def line(
        self, level: int, message: str, created: float, pid: int | None, fields: dict[str, object]
    ) -> str:
        moment = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(created))
        millis = int(created % 1 * 1000)
        text = f"{moment},{millis:03d} {self._severity(level)} [{pid}] {message}"
        return f"{text} {_encode_json(fields)}" if fields else text


class _LineHandler(logging.Handler):
    """Writes whole lines to a file descriptor, a batch at a time.

    A write() per line costs more than a small RPC does (the reader of the pipe must wake), so
    lines gather for up to `FLUSH_SECONDS` or `FLUSH_BYTES`, and go out in writes of whole lines
    no larger than PIPE_BUF, which the kernel keeps whole even when workers share the pipe.
    Errors go out at once (warnings wait: a client can cause one per call), and every exit
    path flushes.
    """

    FLUSH_SECONDS = 0.05
    FLUSH_BYTES = select.PIPE_BUF

    def __init__(self, fd: int) -> None:
        super().__init__()
        self._fd = fd
        self._buffer: list[bytes] = []
        self._size = 0
        self._pending = threading.Event()
        self._start_flusher()
        os.register_at_fork(after_in_child=self._start_flusher)

    def _start_flusher(self) -> None:
        # Threads do not survive fork: each worker process starts its own.
        self.pid = os.getpid()
        self.createLock()
        self._buffer, self._size = [], 0
        self._pending = threading.Event()
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
        line = (line + "\n").encode("utf-8", "replace")
        with self.lock:
            self._buffer.append(line)
            self._size += len(line)
            now = level >= logging.ERROR or self._size >= self.FLUSH_BYTES
        if now:
            self.flush()
        else:
            self._pending.set()

    def flush(self) -> None:
        with self.lock:
            lines, self._buffer, self._size = self._buffer, [], 0
            self._pending.clear()
            chunk = b""
            for line in lines:
                if chunk and len(chunk) + len(line) > self.FLUSH_BYTES:
                    self._write(chunk)
                    chunk = b""
                chunk += line
            if chunk:
                self._write(chunk)

    def _write(self, data: bytes) -> None:
        try:
            while data:  # one write() in practice; loop only on a short write
                data = data[os.write(self._fd, data) :]
        except OSError:
            pass  # stdout closed: nowhere left to report it


_configured: _LineHandler | None = None


def configure(log_format: str) -> None:
    """Routes the root logger to stdout in `log_format`, one of `FORMATS` (AUTO: text on a
    terminal, else JSON)."""
    global _configured
    if log_format not in FORMATS:
        raise ValueError(f"log format {log_format!r} is not one of {', '.join(FORMATS)}")
    fd = sys.stdout.fileno()
    if log_format == AUTO:
        log_format = TEXT if os.isatty(fd) else JSON
    handler = _LineHandler(fd)
    formatter = JsonFormatter() if log_format == JSON else TextFormatter(colour_supported(fd))
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.INFO)
    _configured = handler


def write(logger: logging.Logger, level: int, message: str, fields: dict[str, object]) -> None:
    """Logs `message` with `fields` at `level`, without a LogRecord once configure() has run:
    the line of every RPC is written here, and a LogRecord (caller lookup, thread names, ...)
    cost more than the rest of the line. Before configure(), an ordinary log call."""
    handler = _configured
    if handler is None:
        logger.log(level, message, extra={FIELDS_ATTRIBUTE: fields})
    else:
        formatter = handler.formatter
        assert isinstance(formatter, LineFormatter)
        handler.write(level, formatter.line(level, message, time.time(), handler.pid, fields))


def flush() -> None:
    """Writes out buffered lines: call before os._exit, which skips logging's own shutdown."""
    for handler in logging.getLogger().handlers:
        handler.flush()
