"""Logs as Cloud Logging reads them: one JSON object a line on stdout.

Cloud Run forwards a container's stdout to Cloud Logging, which lifts `severity`, `message`,
`time`, `logging.googleapis.com/trace` and `logging.googleapis.com/labels` out of each JSON
line. `--log_format=text` prints the same records for people. Each line is written with a
single write() so the lines of several worker processes sharing stdout never interleave.
"""

from __future__ import annotations

import datetime
import json
import logging
import os
import sys

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
    def __init__(self, fd: int) -> None:
        super().__init__()
        self._fd = fd

    def emit(self, record: logging.LogRecord) -> None:
        try:
            line = (self.format(record) + "\n").encode("utf-8", "replace")
            while line:  # one write() in practice; loop only on a short write
                line = line[os.write(self._fd, line) :]
        except Exception:
            self.handleError(record)


def configure(log_format: str) -> None:
    """Routes the root logger to stdout in `log_format` ("json" or "text")."""
    handler = _LineHandler(sys.stdout.fileno())
    handler.setFormatter(JsonFormatter() if log_format == "json" else TextFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.INFO)
