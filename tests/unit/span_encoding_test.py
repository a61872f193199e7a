"""span_encoding: the exporter's request must be byte for byte what the SDK's encoder makes of
the same spans, whatever they carry, on the first export and on every one after (the cache),
and what the exporter sends must be that request."""

from __future__ import annotations

from unittest import mock

from absl.testing import absltest
from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, SpanLimits, TracerProvider
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import SpanContext, SpanKind, StatusCode, TraceFlags

from python.runtime import server_span, span_encoding

CALLER = SpanContext(0xABCDEF, 0xBEEF, is_remote=True, trace_flags=TraceFlags(1))
# Values of every kind, a list among them (`same`: equal values of three types, one a span).
ODD_ATTRIBUTES = {"n": 1, "b": True, "f": 1.0, "list": [1, 2], "s": "x", "bytes": b"\xff"}


def server_spans(
    resource: Resource, scope: str, peer_port: int, same: object
) -> list[ReadableSpan]:
    ended: list[ReadableSpan] = []
    provider = TracerProvider(resource=resource, shutdown_on_exit=False)
    spans = server_span.ServerSpans(provider, InstrumentationScope(scope), ended.append)
    attributes = {"rpc.system": "grpc", "rpc.method": "Send", "network.peer.port": peer_port}
    parent = trace.set_span_in_context(trace.NonRecordingSpan(CALLER))
    for code in (0, 0, 5, 13):
        span = spans.start("ping.v1.PingService/Send", parent, attributes)
        span.set_call_attribute("rpc.grpc.status_code", code)
        span.end()
    busy = spans.start("ping.v1.PingService/Send", None, attributes)
    busy.set_attributes({**ODD_ATTRIBUTES, "same": same})
    busy.add_event("e", {"k": "v"}, timestamp=1)
    busy.add_link(CALLER, {"why": "x"})
    busy.set_status(StatusCode.ERROR, "failed")
    busy.end()
    return ended


def sdk_client_spans(resource: Resource) -> list[ReadableSpan]:
    ended: list[ReadableSpan] = []
    provider = TracerProvider(resource=resource, shutdown_on_exit=False)
    provider.add_span_processor(mock.Mock(on_end=ended.append))
    with provider.get_tracer("python.channels").start_as_current_span(
        "ping.v1.PingService/Send", kind=SpanKind.CLIENT, attributes=ODD_ATTRIBUTES
    ):
        pass
    return ended


def every_kind() -> list[ReadableSpan]:
    ping, other = Resource({"service.name": "ping"}), Resource({"service.name": "other"})
    return [
        *server_spans(ping, "python.runtime", 50001, same=1),
        *sdk_client_spans(ping),
        *server_spans(other, "python.runtime", 50002, same=True),
        *server_spans(ping, "another.scope", 50003, same=1.0),
    ]


def serialized(request: object) -> bytes:
    return request.SerializeToString(deterministic=True)


class SameBytesAsTheSdkTest(absltest.TestCase):
    def test_every_export_is_the_sdks_request(self) -> None:
        cache = span_encoding.AttributeCache()
        for _ in range(3):  # cold, then from the cache
            spans = every_kind()
            self.assertEqual(cache.request(spans), serialized(encode_spans(spans)))

    def test_a_full_cache_is_emptied_not_grown(self) -> None:
        cache = span_encoding.AttributeCache()
        with mock.patch.object(span_encoding, "CACHED_ATTRIBUTES", 3):
            spans = every_kind()
            self.assertEqual(cache.request(spans), serialized(encode_spans(spans)))
            self.assertLessEqual(len(cache._encoded), 3)

    def test_no_attributes(self) -> None:
        span = ReadableSpan("bare", SpanContext(1, 2, False, TraceFlags(1)))
        cache = span_encoding.AttributeCache()
        self.assertEqual(cache.request([span]), serialized(encode_spans([span])))

    def test_equal_values_of_other_types_are_not_taken_from_the_cache(self) -> None:
        # Sequences arrive as tuples (BoundedAttributes): (1, 0) == (True, False), and
        # 0.0 == -0.0, yet each is encoded differently.
        cache = span_encoding.AttributeCache()
        for values in (((1, 0), (True, False)), ((1, 2), (1.0, 2.0)), (0.0, -0.0)):
            spans = [
                ReadableSpan("s", SpanContext(1, 2, False, TraceFlags(1)), attributes={"a": v})
                for v in values
            ]
            self.assertEqual(cache.request(spans), serialized(encode_spans(spans)))

    def test_every_field_and_size(self) -> None:
        # Trace state, dropped counts, lengths past one varint byte, names not ASCII, no end.
        state = trace.TraceState([("vendor", "x" * 200), ("other", "1")])
        context = SpanContext(1 << 127, (1 << 64) - 1, False, TraceFlags(1), state)
        provider = TracerProvider(
            shutdown_on_exit=False,
            span_limits=SpanLimits(max_span_attributes=2, max_events=1, max_links=1),
        )
        tracer = provider.get_tracer("s")
        with tracer.start_as_current_span("é" * 100, kind=SpanKind.CONSUMER) as sdk_span:
            sdk_span.set_attributes({"a": 1, "b": "y" * 300, "c": 3})
            sdk_span.add_event("one")
            sdk_span.add_event("two")
            sdk_span.add_link(CALLER)
            sdk_span.add_link(context)
        spans = [
            ReadableSpan("", context, parent=SpanContext(1, 0, False), kind=SpanKind.INTERNAL),
            ReadableSpan("unended", context, start_time=1, status=None),
            ReadableSpan("zero", SpanContext(1, 1, False), start_time=0, end_time=2**64 - 1),
            sdk_span,
        ]
        self.assertEqual(sdk_span.dropped_attributes, 1)
        cache = span_encoding.AttributeCache()
        self.assertEqual(cache.request(spans), serialized(encode_spans(spans)))

    def test_the_exporter_sends_the_request(self) -> None:
        exporter = span_encoding.CachingSpanExporter(endpoint="localhost:1", insecure=True)
        self.addCleanup(exporter.shutdown)
        spans = every_kind()
        sent = exporter._translate_data(spans)
        self.assertEqual(sent.SerializeToString(), serialized(encode_spans(spans)))

    def test_long_values_are_not_kept(self) -> None:
        # A handler's attribute can be large (a payload): 4096 of them must not stay in memory.
        cache = span_encoding.AttributeCache()
        spans = [
            ReadableSpan("s", SpanContext(1, 2, False, TraceFlags(1)), attributes={"a": v})
            for v in ("x" * 100_000 + str(i) for i in range(10))
        ]
        self.assertEqual(cache.request(spans), serialized(encode_spans(spans)))
        self.assertEqual(len(cache._encoded), 0)

    def test_equal_resources_and_scopes_encoded_otherwise_in_a_later_export(self) -> None:
        # Resources and scopes compare their attributes as dicts (order-blind, 1 == True ==
        # 1.0): a later export of an equal one must carry its own bytes, not the first's.
        cache = span_encoding.AttributeCache()
        context = SpanContext(1, 2, False, TraceFlags(1))
        first = Resource({"a": 1, "b": 2})
        exports = [
            (first, InstrumentationScope("s", attributes={"x": 1})),
            (Resource({"b": 2, "a": 1}), InstrumentationScope("s", attributes={"x": 1})),
            (first, InstrumentationScope("s", attributes={"x": True})),  # bool sent as int
        ]
        for resource, scope in exports:
            with self.subTest(resource=resource.attributes, scope=scope):
                spans = [ReadableSpan("s", context, resource=resource, instrumentation_scope=scope)]
                self.assertEqual(cache.request(spans), serialized(encode_spans(spans)))

    def test_long_status_descriptions_and_names_are_not_kept(self) -> None:
        # As test_long_values_are_not_kept: a handler's set_status(ERROR, str(error)) or
        # update_name() may carry a payload, which 4096 times over would hold the memory.
        cache = span_encoding.AttributeCache()
        context = SpanContext(1, 2, False, TraceFlags(1))
        spans = [
            ReadableSpan(
                "n" * 100_000 + str(i),
                context,
                status=trace.Status(StatusCode.ERROR, "x" * 100_000 + str(i)),
            )
            for i in range(10)
        ]
        self.assertEqual(cache.request(spans), serialized(encode_spans(spans)))
        kept = sum(len(v) for v in (*cache._statuses.values(), *cache._names.values()))
        self.assertLess(kept, 10_000)


if __name__ == "__main__":
    absltest.main()
