"""Logs as Cloud Logging reads them: one JSON object a line on stdout.

Cloud Run forwards a container's stdout to Cloud Logging, which lifts `severity`, `message`,
`time`, `logging.googleapis.com/trace` and `logging.googleapis.com/labels` out of each JSON
line. `--log_format=text` prints the same records for people.
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


class JsonFormatter(logging.Formatter):
    def __init__(self) -> None:
        super().__init__()
        self._labels = _labels()

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "severity": _SEVERITY.get(record.levelno, "DEFAULT"),
            "message": record.getMessage(),
            "time": datetime.datetime.fromtimestamp(record.created, datetime.UTC).isoformat(),
            "pid": record.process,
        }
        entry.update(getattr(record, FIELDS_ATTRIBUTE, {}))
        if record.exc_info:
            # Cloud Error Reporting picks up a stack trace found in the message.
            entry["message"] = f"{entry['message']}\n{self.formatException(record.exc_info)}"
        if self._labels:
            entry["logging.googleapis.com/labels"] = self._labels
        return json.dumps(entry, default=str)


class TextFormatter(logging.Formatter):
    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s [%(process)d] %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        fields = getattr(record, FIELDS_ATTRIBUTE, {})
        return f"{text} {json.dumps(fields, default=str)}" if fields else text


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
            line = (self.format(record) + "\n").encode("utf-8", "replace")
        except Exception:
            self.handleError(record)
            return
        with self.lock:
            self._buffer.append(line)
            self._size += len(line)
            now = record.levelno >= logging.ERROR or self._size >= self.FLUSH_BYTES
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


def configure(log_format: str) -> None:
    """Routes the root logger to stdout in `log_format` ("json" or "text")."""
    handler = _LineHandler(sys.stdout.fileno())
    handler.setFormatter(JsonFormatter() if log_format == "json" else TextFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.INFO)


def flush() -> None:
    """Writes out buffered lines: call before os._exit, which skips logging's own shutdown."""
    for handler in logging.getLogger().handlers:
        handler.flush()
