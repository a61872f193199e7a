"""Each call's log line: the method, the code the client got, the latency, the peer, the trace
fields and the caller, at a severity by code. The per-call boundary (call_boundary.py) decides
the code and asks for the line when the call is over; this module only writes it.

- Which calls get a line is --rpc_logs: all, errors (every code but OK), none. An unexpected
  exception's traceback is always logged (by the boundary, on the same logger).
- Lines in JSON are written from parts encoded once per method and code (logs.JsonLines):
  the same bytes as from a dict of the fields, at a fraction of the cost per call.
- The trace headers are parsed only for a line that is written. With telemetry on
  (telemetry.py) the line's trace fields are the call's span's, so Cloud Logging and Cloud
  Trace join.
- A method path is the client's to choose, up to the size of a header: the line keeps a prefix.

Metadata values are never logged (they carry tokens); only the trace headers are read.
"""

from __future__ import annotations

import contextvars
import logging
import time
from typing import TYPE_CHECKING

import grpc

from python.runtime import logs, trace_context

if TYPE_CHECKING:
    from opentelemetry.trace import Span

    from python.runtime.call_boundary import CallRecord

logger = logging.getLogger("rpc")
# Which calls get a log line (--rpc_logs). Unexpected exceptions are always logged.
ALL, ERRORS, NONE = "all", "errors", "none"
MAX_LOGGED_METHOD_CHARS = 200
# Severity by code: the server's faults are errors, the caller's are warnings.
_SERVER_FAULTS = frozenset(
    {grpc.StatusCode.INTERNAL, grpc.StatusCode.UNKNOWN, grpc.StatusCode.DATA_LOSS}
)
_ROUTINE = frozenset({grpc.StatusCode.OK, grpc.StatusCode.CANCELLED})

# The record of the call this task is serving, for wrappers inside the boundary's (the
# caller's identity from the auth wrapper).
CURRENT: contextvars.ContextVar[CallRecord] = contextvars.ContextVar("rpc_call")


def note_caller(email: str | None) -> None:
    """Names the caller in the log line of the call this task serves (the auth wrapper's)."""
    if email and (record := CURRENT.get(None)) is not None:
        record.caller = email


def level_of(code: grpc.StatusCode) -> int:
    if code in _SERVER_FAULTS:
        return logging.ERROR
    return logging.INFO if code in _ROUTINE else logging.WARNING


class MethodLog:
    """The log lines of one method's calls: what they share, their constant parts encoded
    once per code."""

    def __init__(self, name: str, project: str | None, which: str) -> None:
        self.name = name[:MAX_LOGGED_METHOD_CHARS]
        self.project = project
        self.which = which
        # By code: the level, the JSON line's head and the members up to the latency's value.
        self._encoded: dict[grpc.StatusCode, tuple[int, str, str]] = {}

    def log(self, code: grpc.StatusCode, record: CallRecord) -> None:
        if self.which == NONE or (self.which == ERRORS and code is grpc.StatusCode.OK):
            return
        lines = logs.json_lines()
        if lines is None:  # text, or logs not configured (tests): an ordinary log call
            logs.write(
                logger, level_of(code), f"{self.name} {code.name}", self.fields(record, code)
            )
            return
        level, head, code_members = self._encoded.get(code) or self._encode(code)
        latency = time.perf_counter() - record.started
        lines.write(level, head, self.json_members, record, code_members, latency)

    def fields(self, record: CallRecord, code: grpc.StatusCode) -> dict[str, object]:
        fields: dict[str, object] = {
            "method": self.name,
            "code": code.name,
            "latency": f"{time.perf_counter() - record.started:.6f}s",
            "peer": record.peer,
        }
        if self.project and (trace := _trace(record)):
            fields.update(trace.log_fields(self.project))
        if record.caller:
            fields["caller"] = record.caller
        return fields

    def json_members(self, record: CallRecord, code_members: str, latency: float) -> str:
        """The line's fields from the latency on as JSON members (logs.JsonLines), the same as
        `fields` gives; `code_members` are the method's and code's, up to the latency's value.
        Called when the line's batch is written, after the call."""
        members = f'{code_members}{latency:.6f}s", "peer": {logs.encode_string(record.peer)}'
        if self.project and (trace := _trace(record)):
            members += trace.log_json(self.project)
        if record.caller:
            members += logs.member("caller", record.caller)
        return members

    def _encode(self, code: grpc.StatusCode) -> tuple[int, str, str]:
        level = level_of(code)
        head = logs.JsonLines.head(level, f"{self.name} {code.name}")
        members = f'{logs.member("method", self.name)}, "code": "{code.name}", "latency": "'
        self._encoded[code] = level, head, members
        return level, head, members


def _trace(record: CallRecord) -> trace_context.TraceContext | None:
    if record.span is not None:
        return _of_span(record.span)
    return trace_context.from_metadata(record.metadata)


def _of_span(span: Span) -> trace_context.TraceContext:
    """The trace fields of the log line: the call's own span."""
    ids = span.get_span_context()
    return trace_context.TraceContext(
        f"{ids.trace_id:032x}", f"{ids.span_id:016x}", ids.trace_flags.sampled
    )
