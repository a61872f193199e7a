"""Trace ids from the headers Cloud Run's front end (and OpenTelemetry clients) send.

Cloud Logging groups a request's log lines under `logging.googleapis.com/trace` =
`projects/PROJECT/traces/TRACE_ID`, with the span as 16 hex digits.
"""

from __future__ import annotations

import re
from json.encoder import encode_basestring_ascii  # type: ignore[attr-defined]
from typing import NamedTuple

# X-Cloud-Trace-Context: TRACE_ID/SPAN_ID;o=OPTIONS, the span id in decimal.
_CLOUD = re.compile(r"^([0-9a-fA-F]{32})(?:/(\d{1,20}))?(?:;o=([01]))?$")
# W3C traceparent: VERSION-TRACE_ID-PARENT_ID-FLAGS.
_W3C = re.compile(r"^[0-9a-f]{2}-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$")
_ZERO_TRACE = "0" * 32


class TraceContext(NamedTuple):  # a tuple: made for every call, at a third of a dataclass's cost
    trace_id: str
    span_id: str | None
    sampled: bool
    # W3C only: the random-trace-id flag, and the `tracestate` header(s) as sent, joined (the
    # caller's vendors' entries, which the call's span carries on; OpenTelemetry's TraceState
    # parses it).
    random: bool = False
    state: str = ""

    def log_fields(self, project: str) -> dict[str, object]:
        fields: dict[str, object] = {
            "logging.googleapis.com/trace": f"projects/{project}/traces/{self.trace_id}",
            "logging.googleapis.com/trace_sampled": self.sampled,
        }
        if self.span_id:
            fields["logging.googleapis.com/spanId"] = self.span_id
        return fields

    def log_json(self, project: str) -> str:
        """`log_fields` as the members of a JSON line (`, "key": value` each), in its order."""
        trace = encode_basestring_ascii(f"projects/{project}/traces/{self.trace_id}")
        sampled = "true" if self.sampled else "false"
        members = (
            f', "logging.googleapis.com/trace": {trace}'
            f', "logging.googleapis.com/trace_sampled": {sampled}'
        )
        if self.span_id:  # hex digits (the patterns above, or a span's id): nothing to escape
            members += f', "logging.googleapis.com/spanId": "{self.span_id}"'
        return members


def from_metadata(metadata: tuple[tuple[str, str | bytes], ...] | None) -> TraceContext | None:
    """The trace of a call, W3C traceparent first; None when no valid header was sent."""
    traceparent = cloud_header = ""
    states: list[str] = []
    for key, value in metadata or ():  # the last of each wins; binary values never do
        if key == "traceparent" and isinstance(value, str):
            traceparent = value
        elif key == "x-cloud-trace-context" and isinstance(value, str):
            cloud_header = value
        elif key == "tracestate" and isinstance(value, str):
            states.append(value)  # W3C: several tracestate headers are one list, in order
    if traceparent and (parent := _W3C.match(traceparent.strip())):
        trace_id, span_id, flags = parent.groups()
        if trace_id != _ZERO_TRACE:
            bits = int(flags, 16)
            return TraceContext(trace_id, span_id, bool(bits & 1), bool(bits & 2), ",".join(states))
    if cloud_header and (cloud := _CLOUD.match(cloud_header.strip())):
        trace_id, span, options = cloud.groups()
        span_id = f"{int(span) & 0xFFFF_FFFF_FFFF_FFFF:016x}" if span else None
        return TraceContext(trace_id.lower(), span_id, options == "1")
    return None
