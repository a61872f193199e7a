"""The OTLP trace exporter, with each span attribute encoded once rather than once per span.

Why: the SDK's encoder builds every attribute's protobuf `KeyValue` anew for every span, 17 us
per span on the exporter's thread, which shares the server's CPU and GIL (a hot loop of 128
server spans, `tests/bench/per_call_micro`'s setting). The runtime's server spans repeat the
same few attributes (the method's names, the peer, the status code), so here each distinct
attribute is encoded once, kept in a bounded cache, and copied into each span: 10 us per span.
Everything else about a span is encoded by the SDK's own functions, in the SDK's order, so the
request is byte for byte the SDK's (tests/unit/span_encoding_test). Those functions are the
encoder's internals: the lock pins their version, and that test fails if an upgrade changes
them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from opentelemetry.exporter.otlp.proto.common._internal import (
    _encode_attributes,
    _encode_instrumentation_scope,
    _encode_resource,
    _encode_span_id,
    _encode_trace_id,
)
from opentelemetry.exporter.otlp.proto.common._internal.trace_encoder import (
    _SPAN_KIND_MAP,
    _encode_events,
    _encode_links,
    _encode_parent_id,
    _encode_status,
    _encode_trace_state,
    _span_flags,
)
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span
from opentelemetry.sdk.trace import ReadableSpan

# Distinct attributes kept encoded; a peer's port is one per connection, so the cache is
# emptied when full rather than grown.
CACHED_ATTRIBUTES = 4096
# Only values whose equality is their encoding's are cached: not floats (0.0 == -0.0, NaN is
# never found) nor sequences ((1, 0) == (True, False)); and no long string (a handler's
# payload), which 4096 times over would hold the process's memory.
_CACHED_TYPES = frozenset({str, int, bool})
CACHED_VALUE_CHARS = 256


class AttributeCache:
    """Each (key, value) attribute's KeyValue, encoded by the SDK the first time it is seen."""

    def __init__(self) -> None:
        self._encoded: dict[tuple[str, Any, type], KeyValue] = {}

    def encode(self, attributes: Mapping[str, Any] | None) -> list[KeyValue] | None:
        if not attributes:
            return None
        encoded = []
        for key, value in attributes.items():
            if type(value) not in _CACHED_TYPES or (
                type(value) is str and len(value) > CACHED_VALUE_CHARS
            ):
                encoded += _encode_attributes({key: value}) or ()
                continue
            cached = self._encoded.get((key, value, type(value)))
            if cached is None:
                if len(self._encoded) >= CACHED_ATTRIBUTES:
                    self._encoded.clear()
                (cached,) = _encode_attributes({key: value}) or (None,)
                if cached is None:  # the SDK skips what it cannot encode
                    continue
                self._encoded[key, value, type(value)] = cached
            encoded.append(cached)
        return encoded

    def span(self, span: ReadableSpan) -> Span:
        """The SDK's `_encode_span`, attributes from the cache."""
        context = span.get_span_context()
        return Span(
            trace_id=_encode_trace_id(context.trace_id),
            span_id=_encode_span_id(context.span_id),
            trace_state=_encode_trace_state(context.trace_state),
            parent_span_id=_encode_parent_id(span.parent),
            name=span.name,
            kind=_SPAN_KIND_MAP[span.kind],
            start_time_unix_nano=span.start_time,
            end_time_unix_nano=span.end_time,
            attributes=self.encode(span.attributes),
            events=_encode_events(span.events),
            links=_encode_links(span.links),
            status=_encode_status(span.status),
            dropped_attributes_count=span.dropped_attributes,
            dropped_events_count=span.dropped_events,
            dropped_links_count=span.dropped_links,
            flags=_span_flags(span.parent),
        )

    def request(self, spans: Sequence[ReadableSpan]) -> ExportTraceServiceRequest:
        """The SDK's `encode_spans`: spans grouped by resource, then by scope, in first-seen
        order."""
        grouped: dict[Any, dict[Any, list[Span]]] = {}
        for span in spans:
            by_scope = grouped.setdefault(span.resource, {})
            by_scope.setdefault(span.instrumentation_scope or None, []).append(self.span(span))
        return ExportTraceServiceRequest(
            resource_spans=[
                ResourceSpans(
                    resource=_encode_resource(resource),
                    scope_spans=[
                        ScopeSpans(
                            scope=_encode_instrumentation_scope(scope),
                            spans=encoded,
                            schema_url=scope.schema_url if scope else None,
                        )
                        for scope, encoded in by_scope.items()
                    ],
                    schema_url=resource.schema_url,
                )
                for resource, by_scope in grouped.items()
            ]
        )


class CachingSpanExporter(OTLPSpanExporter):
    """OTLPSpanExporter, its settings and export all the SDK's, encoding through one cache
    (only its exporting thread encodes)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._cache = AttributeCache()

    def _translate_data(self, data: Sequence[ReadableSpan]) -> ExportTraceServiceRequest:
        return self._cache.request(data)
