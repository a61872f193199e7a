"""The OTLP trace exporter's request, written as protobuf bytes from parts encoded once.

Why: the SDK's encoder builds a protobuf `Span` and a `KeyValue` per attribute anew for every
span, then serialises them: 13.5 us per span on the exporter's thread even with each attribute
message cached, a tenth of what traces may cost per call, on a thread that shares the server's
CPU and GIL. The runtime's server spans repeat the same few attributes (the method's names, the
peer, the status code) and differ in ids and times, so here each distinct attribute is encoded
once into its bytes, kept in a bounded cache, and a span is the concatenation of its fields.
What is not the runtime's own (events, links, attributes that are not cached) is encoded by the
SDK's own functions. The request is byte for byte the SDK's (tests/unit/span_encoding_test);
the functions used are the encoder's internals: the lock pins their version, and that test
fails if an upgrade changes them.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from opentelemetry.exporter.otlp.proto.common._internal import (
    _encode_attributes,
    _encode_instrumentation_scope,
    _encode_resource,
)
from opentelemetry.exporter.otlp.proto.common._internal.trace_encoder import (
    _SPAN_KIND_MAP,
    _encode_events,
    _encode_links,
    _encode_status,
    _encode_trace_state,
    _span_flags,
)
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.trace import Status, StatusCode

# Distinct attributes kept encoded; a peer's port is one per connection, so the cache is
# emptied when full rather than grown.
CACHED_ATTRIBUTES = 4096
# Only values whose equality is their encoding's are cached: not floats (0.0 == -0.0, NaN is
# never found) nor sequences ((1, 0) == (True, False)); and no long string (a handler's
# payload), which 4096 times over would hold the process's memory.
_CACHED_TYPES = frozenset({str, int, bool})
CACHED_VALUE_CHARS = 256
# Resources and scopes kept encoded, by identity (a process has one or two of each).
_CACHED_RESOURCES = 64

# Field keys (number << 3 | wire type) of the messages written here (opentelemetry-proto's
# trace.proto and trace_service.proto).
_LEN, _FIXED64, _FIXED32, _VARINT = 2, 1, 5, 0
_REQUEST_RESOURCE_SPANS = 1 << 3 | _LEN
_RESOURCE_SPANS_SCOPE_SPANS = 2 << 3 | _LEN
_SCOPE_SPANS_SPANS = 2 << 3 | _LEN
_TRACE_ID, _SPAN_ID, _TRACE_STATE, _PARENT_ID, _NAME = (n << 3 | _LEN for n in range(1, 6))
_KIND = 6 << 3 | _VARINT
_START, _END = 7 << 3 | _FIXED64, 8 << 3 | _FIXED64
_ATTRIBUTE = 9 << 3 | _LEN
_DROPPED_ATTRIBUTES, _DROPPED_EVENTS, _DROPPED_LINKS = (n << 3 | _VARINT for n in (10, 12, 14))
_EVENT, _LINK, _STATUS = 11 << 3 | _LEN, 13 << 3 | _LEN, 15 << 3 | _LEN
# The heads of the fixed-size fields: key, then length where there is one.
_TRACE_ID_HEAD, _SPAN_ID_HEAD, _PARENT_ID_HEAD = (
    bytes((_TRACE_ID, 16)),
    bytes((_SPAN_ID, 8)),
    bytes((_PARENT_ID, 8)),
)
_FIXED64_FIELD = struct.Struct("<BQ")  # a one-byte key, then 8 bytes
_FLAGS = 16 << 3 | _FIXED32  # the one key past 127: two bytes as a varint
_FLAGS_HEAD = bytes((_FLAGS & 0x7F | 0x80, _FLAGS >> 7))
_UINT32 = struct.Struct("<I")
# A message's fields before its repeated spans or scopes, and after them.
Heads = tuple[bytes, bytes]


def _varint(value: int) -> bytes:
    out = bytearray()
    while value > 0x7F:
        out.append(value & 0x7F | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _field(key: int, data: bytes) -> bytes:
    """A length-delimited field (key < 128)."""
    return bytes((key,)) + _varint(len(data)) + data


class AttributeCache:
    """Each (key, value) attribute's field bytes, encoded by the SDK the first time it is seen;
    and each resource's and scope's, as their messages' heads and tails around the spans."""

    def __init__(self) -> None:
        self._encoded: dict[tuple[str, Any, type], bytes] = {}
        self._resources: dict[int, tuple[Any, Heads]] = {}
        self._scopes: dict[int, tuple[Any, Heads]] = {}
        self._statuses: dict[tuple[StatusCode, str | None], bytes] = {}
        self._names: dict[str, bytes] = {}

    def attributes(self, attributes: Mapping[str, Any] | None) -> bytes:
        if not attributes:
            return b""
        encoded = []
        for key, value in attributes.items():
            if type(value) not in _CACHED_TYPES or (
                type(value) is str and len(value) > CACHED_VALUE_CHARS
            ):
                encoded += _attribute_fields({key: value})
                continue
            cached = self._encoded.get((key, value, type(value)))
            if cached is None:
                if len(self._encoded) >= CACHED_ATTRIBUTES:
                    self._encoded.clear()
                cached = b"".join(_attribute_fields({key: value}))  # b"": the SDK skips it
                self._encoded[key, value, type(value)] = cached
            encoded.append(cached)
        return b"".join(encoded)

    def span(self, span: ReadableSpan) -> bytes:
        """The SDK's `_encode_span`, serialised: each field as the SDK sets it, in field order,
        empty ones left out as protobuf leaves them out."""
        context = span.get_span_context()
        parent = span.parent
        parts = [
            _TRACE_ID_HEAD,
            context.trace_id.to_bytes(16, "big"),
            _SPAN_ID_HEAD,
            context.span_id.to_bytes(8, "big"),
        ]
        if context.trace_state and (state := _encode_trace_state(context.trace_state)):
            parts.append(_field(_TRACE_STATE, state.encode()))
        if parent:
            parts += (_PARENT_ID_HEAD, parent.span_id.to_bytes(8, "big"))
        if name := span.name:
            parts.append(self._names.get(name) or self._name(name))
        if kind := _SPAN_KIND_MAP[span.kind]:
            parts.append(bytes((_KIND, kind)))
        if span.start_time:
            parts.append(_FIXED64_FIELD.pack(_START, span.start_time))
        if span.end_time:
            parts.append(_FIXED64_FIELD.pack(_END, span.end_time))
        parts.append(self.attributes(span.attributes))
        if dropped := span.dropped_attributes:
            parts.append(bytes((_DROPPED_ATTRIBUTES,)) + _varint(dropped))
        if events := span.events:
            for event in _encode_events(events) or ():
                parts.append(_field(_EVENT, event.SerializeToString()))
        if dropped := span.dropped_events:
            parts.append(bytes((_DROPPED_EVENTS,)) + _varint(dropped))
        if links := span.links:
            for link in _encode_links(links) or ():
                parts.append(_field(_LINK, link.SerializeToString()))
        if dropped := span.dropped_links:
            parts.append(bytes((_DROPPED_LINKS,)) + _varint(dropped))
        if (status := span.status) is not None:
            parts.append(self._status(status))
        parts += (_FLAGS_HEAD, _UINT32.pack(_span_flags(parent)))
        return b"".join(parts)

    def request(self, spans: Sequence[ReadableSpan]) -> bytes:
        """The SDK's `encode_spans`, serialised: spans grouped by resource, then by scope, in
        first-seen order."""
        grouped: dict[Any, dict[Any, list[bytes]]] = {}
        resource = scope = encoded = None
        for span in spans:
            # Spans in a row mostly share both: the groups are looked up when one changes.
            if span.resource is not resource or span.instrumentation_scope is not scope:
                resource, scope = span.resource, span.instrumentation_scope
                by_scope = grouped.setdefault(resource, {})
                encoded = by_scope.setdefault(scope or None, [])
            encoded.append(_field(_SCOPE_SPANS_SPANS, self.span(span)))
        request = []
        for resource, by_scope in grouped.items():
            head, tail = self._resource(resource)
            scopes = []
            for scope, encoded in by_scope.items():
                scope_head, scope_tail = self._scope(scope)
                scope_spans = scope_head + b"".join(encoded) + scope_tail
                scopes.append(_field(_RESOURCE_SPANS_SCOPE_SPANS, scope_spans))
            request.append(_field(_REQUEST_RESOURCE_SPANS, head + b"".join(scopes) + tail))
        return b"".join(request)

    def _name(self, name: str) -> bytes:
        encoded = _field(_NAME, name.encode())
        if len(name) <= CACHED_VALUE_CHARS:  # update_name() may carry a payload
            if len(self._names) >= CACHED_ATTRIBUTES:  # the names of UNIMPLEMENTED calls' paths
                self._names.clear()
            self._names[name] = encoded
        return encoded

    def _status(self, status: Status) -> bytes:
        key = (status.status_code, status.description)
        if (encoded := self._statuses.get(key)) is None:
            encoded = _field(_STATUS, _encode_status(status).SerializeToString())
            if len(status.description or "") <= CACHED_VALUE_CHARS:  # the handler's text
                if len(self._statuses) >= CACHED_ATTRIBUTES:
                    self._statuses.clear()
                self._statuses[key] = encoded
        return encoded

    def _resource(self, resource: Any) -> tuple[bytes, bytes]:
        """ResourceSpans' fields before its scopes and after them (a process has one)."""
        return _by_identity(self._resources, resource, _resource_heads)

    def _scope(self, scope: Any) -> tuple[bytes, bytes]:
        """ScopeSpans' fields before its spans and after them."""
        return _by_identity(self._scopes, scope, _scope_heads)


def _by_identity(
    cache: dict[int, tuple[Any, Heads]], key: Any, encode: Callable[[Any], Heads]
) -> Heads:
    """`encode(key)`, kept by the key's identity, not equality: equal resources and scopes may
    encode differently (attributes in another order; 1, True and 1.0 are equal), and the SDK
    encodes the batch's own. The entry holds the key, so its id is not reused while kept."""
    entry = cache.get(id(key))
    if entry is None or entry[0] is not key:
        if len(cache) >= _CACHED_RESOURCES:
            cache.clear()
        entry = cache[id(key)] = (key, encode(key))
    return entry[1]


def _resource_heads(resource: Any) -> Heads:
    return (
        ResourceSpans(resource=_encode_resource(resource)).SerializeToString(),
        ResourceSpans(schema_url=resource.schema_url).SerializeToString(),
    )


def _scope_heads(scope: Any) -> Heads:
    return (
        ScopeSpans(scope=_encode_instrumentation_scope(scope)).SerializeToString(),
        ScopeSpans(schema_url=scope.schema_url if scope else None).SerializeToString(),
    )


def _attribute_fields(attributes: Mapping[str, Any]) -> list[bytes]:
    encoded = _encode_attributes(attributes) or ()
    return [_field(_ATTRIBUTE, kv.SerializeToString()) for kv in encoded]


class CachingSpanExporter(OTLPSpanExporter):
    """OTLPSpanExporter, its settings and export all the SDK's, encoding through one cache
    (only its exporting thread encodes)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._cache = AttributeCache()

    def _translate_data(self, data: Sequence[ReadableSpan]) -> ExportTraceServiceRequest:
        return export_request(self._cache, data)


def export_request(
    cache: AttributeCache, spans: Sequence[ReadableSpan]
) -> ExportTraceServiceRequest:
    """The request as the exporter's stub takes it: a message, which it serialises. The bytes
    are read back into one, in C, rather than built as messages in Python."""
    return ExportTraceServiceRequest.FromString(cache.request(spans))
