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
import sys
import time
from collections.abc import Callable

from python.runtime.line_writer import LineHandler
from python.runtime.printed_lines import PrintedLines

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
# A str as a JSON string, quotes included: what _encode_json does with one (ensure_ascii).
encode_string = json.encoder.encode_basestring_ascii  # type: ignore[attr-defined]


def utc_timestamp(ns: int) -> str:
    """`ns` since the epoch as `datetime.isoformat()` writes it in UTC (no fraction when there
    are no microseconds). The date and time of day are formatted once per second: a datetime
    per line cost a tenth of the line."""
    global _second
    seconds, within = divmod(ns, 1_000_000_000)
    cached, prefix = _second
    if seconds != cached:
        prefix = datetime.datetime.fromtimestamp(seconds, datetime.UTC).isoformat()[:-6]
        _second = (seconds, prefix)
    micros = within // 1000
    return f"{prefix}.{micros:06d}+00:00" if micros else f"{prefix}+00:00"


_second = (-1, "")  # the second utc_timestamp formatted last, and its text without the offset


class JsonFormatter(LineFormatter):
    def __init__(self) -> None:
        super().__init__()
        self._labels = _labels()
        # What ends every line: the labels, when Cloud Run names the service.
        self.tail = "}"
        if self._labels:
            self.tail = f', "logging.googleapis.com/labels": {_encode_json(self._labels)}}}'

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


# Control characters, and the separators Python's str.splitlines also breaks lines at, each as
# its repr escape (\n, \x1b, \u2028): what a text line may not hold raw.
_TEXT_ESCAPES = {
    code: repr(chr(code))[1:-1] for code in (*range(0x20), *range(0x7F, 0xA0), 0x2028, 0x2029)
}


def escape_controls(text: str) -> str:
    """`text` with its control characters escaped, for a text line: a message may carry what a
    client sent (a method path, say), and a raw newline there would start a line of the
    client's making, an escape sequence would drive the reader's terminal."""
    return text.translate(_TEXT_ESCAPES)


class TextFormatter(LineFormatter):
    """Lines for people. The message is escaped (`escape_controls`), so that one record is one
    line; a traceback follows on lines of its own, each indented and escaped the same way, so
    that none of them can pass for a line of the log."""

    def __init__(self, colour: bool = False) -> None:
        super().__init__()
        self._colour = colour

    def format(self, record: logging.LogRecord) -> str:
        fields = getattr(record, FIELDS_ATTRIBUTE, {})
        text = self.line(
            record.levelno, record.getMessage(), record.created, record.process, fields
        )
        if record.exc_info:
            trace = self.formatException(record.exc_info).split("\n")
            text += "".join(f"\n    {escape_controls(line)}" for line in trace)
        return text

    def _severity(self, level: int) -> str:
        name = logging.getLevelName(level)
        code = _COLOURS.get(level) if self._colour else None
        return f"\033[{code}m{name}\033[0m" if code else name

    def line(
        self, level: int, message: str, created: float, pid: int | None, fields: dict[str, object]
    ) -> str:
        moment = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(created))
        millis = int(created % 1 * 1000)
        text = f"{moment},{millis:03d} {self._severity(level)} [{pid}] {escape_controls(message)}"
        return f"{text} {_encode_json(fields)}" if fields else text


class JsonLines:
    """Writes JSON lines whose constant parts the caller encoded once: the line of every RPC.

    A line is `head(level, message)`, the time, the pid, then the members (`, "key": value`
    each, see `member`), then the labels: the same bytes as JsonFormatter makes from a dict of
    those fields, at a fraction of the cost (the dict, the encoder's walk, a datetime per line).
    """

    def __init__(self, handler: LineHandler, formatter: JsonFormatter) -> None:
        self._handler = handler
        self._tail = formatter.tail

    @staticmethod
    def head(level: int, message: str) -> str:
        """The start of a line, up to the time's opening quote."""
        severity = _SEVERITY.get(level, "DEFAULT")
        return f'{{"severity": "{severity}", "message": {encode_string(message)}, "time": "'

    def write(self, level: int, head: str, members: Callable[..., str], *args: object) -> None:
        """Writes the line of this moment whose members are `members(*args)`, called when the
        line's batch goes out: `args` must not change until then."""
        self._handler.write_later(level, self._line, head, time.time_ns(), members, args)

    def _line(self, head: str, ns: int, members: Callable[..., str], args: tuple) -> str:
        pid_member = self._handler.pid_member
        return f"{head}{utc_timestamp(ns)}{pid_member}{members(*args)}{self._tail}"


def member(key: str, value: object) -> str:
    """`, "key": value` in JSON, to append to a line's members."""
    return f", {encode_string(key)}: {_encode_json(value)}"


_configured: LineHandler | None = None
_json_lines: JsonLines | None = None


def configure(log_format: str) -> None:
    """Routes the root logger to stdout in `log_format`, one of `FORMATS` (AUTO: text on a
    terminal, else JSON), and what code prints through the same writer (printed_lines.py)."""
    global _configured, _json_lines
    if log_format not in FORMATS:
        raise ValueError(f"log format {log_format!r} is not one of {', '.join(FORMATS)}")
    fd = sys.stdout.fileno()
    if log_format == AUTO:
        log_format = TEXT if os.isatty(fd) else JSON
    handler = LineHandler(fd)
    formatter = JsonFormatter() if log_format == JSON else TextFormatter(colour_supported(fd))
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.INFO)
    _configured = handler
    _json_lines = JsonLines(handler, formatter) if isinstance(formatter, JsonFormatter) else None
    sys.stdout = PrintedLines(handler, fd)  # what code prints: whole lines, in the same order


def json_lines() -> JsonLines | None:
    """Where pre-encoded JSON lines go: None unless configure() chose JSON (then, `write`)."""
    return _json_lines


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


def batch_in_worker() -> None:
    """Batches lines again in a process the runtime forked as a worker, whose exit paths all
    flush (a forked process writes each line at once until then)."""
    if _configured is not None:
        _configured.batch()


def flush() -> None:
    """Writes out buffered lines: call before os._exit, which skips logging's own shutdown."""
    if isinstance(sys.stdout, PrintedLines):
        sys.stdout.flush()  # a printed line still waiting for its newline
    for handler in logging.getLogger().handlers:
        handler.flush()
