"""server_span: the runtime's SERVER span must export exactly what the SDK's span would for the
same call (the OTLP bytes, times aside), whatever handler code does with it, and be sampled by
the SDK's sampler."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from unittest import mock

from absl.testing import absltest, parameterized
from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.id_generator import IdGenerator
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF, DEFAULT_ON, TraceIdRatioBased
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import SpanContext, SpanKind, Status, StatusCode, TraceFlags

from python.runtime import server_span

SCOPE = InstrumentationScope("python.runtime")
ATTRIBUTES = {"rpc.system": "grpc", "rpc.service": "ping.v1.PingService", "rpc.method": "Send"}
LINKED = SpanContext(0x1234, 0x5678, is_remote=True, trace_flags=TraceFlags(1))


class CountingIds(IdGenerator):
    """The same ids, in the same order, for both spans compared."""

    def __init__(self) -> None:
        self.next = 0x10

    def generate_span_id(self) -> int:
        self.next += 1
        return self.next

    def generate_trace_id(self) -> int:
        self.next += 1
        return self.next << 64


def parent(sampled: bool) -> trace.Context:
    flags = TraceFlags(TraceFlags.SAMPLED if sampled else TraceFlags.DEFAULT)
    caller = SpanContext(0xABCDEF, 0xBEEF, is_remote=True, trace_flags=flags)
    return trace.set_span_in_context(trace.NonRecordingSpan(caller))


def provider(sampler: object = DEFAULT_ON) -> TracerProvider:
    return TracerProvider(
        sampler=sampler,
        resource=Resource({"service.name": "ping"}),
        id_generator=CountingIds(),
        shutdown_on_exit=False,
    )


# What handler code may do with the current span, then what the runtime does at the end.
def untouched(span: trace.Span) -> None:
    pass


def busy_handler(span: trace.Span) -> None:
    span.set_attribute("app.user", "u1")
    span.set_attributes({"app.items": 3, "app.tags": ["a", "b"], "app.bad": object()})
    span.add_event("cache miss", {"key": "k"}, timestamp=123)
    span.add_link(LINKED, {"why": "batch"})
    span.update_name("ping.v1.PingService/Renamed")
    try:
        raise ValueError("boom")
    except ValueError as error:
        span.record_exception(error, timestamp=456)
    span.set_status(StatusCode.ERROR, "handler failed")


def ok_then_error(span: trace.Span) -> None:
    span.set_status(Status(StatusCode.OK))
    span.set_status(StatusCode.ERROR, "ignored: OK is final")


def link_by_attributes_only(span: trace.Span) -> None:
    # The SDK keeps a link with an invalid context when it carries attributes.
    span.add_link(trace.INVALID_SPAN_CONTEXT, {"why": "no context"})


def ended_by_the_handler(span: trace.Span) -> None:
    span.end(end_time=789)
    span.set_attribute("after", "end")  # ignored, as by the SDK


class SameAsTheSdkTest(parameterized.TestCase):
    def exported(
        self, start: Callable[[TracerProvider, list[ReadableSpan]], trace.Span], handler: Callable
    ) -> list[ReadableSpan]:
        ended: list[ReadableSpan] = []
        span = start(provider(), ended)
        handler(span)
        if isinstance(span, server_span.ServerSpan):  # as otel_export.end
            span.set_call_attribute("rpc.grpc.status_code", 13)
        elif span.is_recording():
            span.set_attribute("rpc.grpc.status_code", 13)
        span.end()
        return ended

    @parameterized.parameters(
        untouched, busy_handler, ok_then_error, link_by_attributes_only, ended_by_the_handler
    )
    def test_same_otlp_as_the_sdks_span(self, handler: Callable) -> None:
        self.check_same_otlp(handler)

    def check_same_otlp(self, handler: Callable) -> None:
        def ours(tracer_provider: TracerProvider, ended: list) -> trace.Span:
            spans = server_span.ServerSpans(tracer_provider, SCOPE, ended.append)
            return spans.start("ping.v1.PingService/Send", parent(True), ATTRIBUTES)

        def sdks(tracer_provider: TracerProvider, ended: list) -> trace.Span:
            tracer_provider.add_span_processor(mock.Mock(on_end=ended.append))
            tracer = tracer_provider.get_tracer(SCOPE.name)
            return tracer.start_span(
                "ping.v1.PingService/Send", parent(True), SpanKind.SERVER, ATTRIBUTES
            )

        (mine,) = self.exported(ours, handler)
        (theirs,) = self.exported(sdks, handler)
        self.assertEqual(without_times(mine), without_times(theirs))
        self.assertEqual(mine.parent.span_id, 0xBEEF)
        # What code may read of an ended span (it is its own ReadableSpan, not a copy): the
        # same as the SDK's, through ReadableSpan's own methods.
        self.assertEqual(json_without_times(mine), json_without_times(theirs))
        for read in ("attributes", "events", "links"):  # read-only views, as the SDK's
            self.assertIs(type(getattr(mine, read)), type(getattr(theirs, read)), read)
        for dropped in ("dropped_attributes", "dropped_events", "dropped_links"):
            self.assertEqual(getattr(mine, dropped), getattr(theirs, dropped), dropped)
        self.assertFalse(mine.is_recording())

    @parameterized.parameters(
        ({"OTEL_SPAN_ATTRIBUTE_COUNT_LIMIT": "2"},),
        ({"OTEL_SPAN_ATTRIBUTE_VALUE_LENGTH_LIMIT": "4"},),
    )
    def test_the_runtimes_own_attributes_are_under_the_limits(self, limits: dict) -> None:
        with mock.patch.dict(os.environ, limits):
            self.check_same_otlp(untouched)

    def test_a_root_span_gets_a_new_trace(self) -> None:
        ended: list[ReadableSpan] = []
        spans = server_span.ServerSpans(provider(), SCOPE, ended.append)
        span = spans.start("s/m", None, ATTRIBUTES)
        span.end()
        (exported,) = ended
        self.assertIsNone(exported.parent)
        self.assertTrue(exported.context.trace_flags.sampled)
        self.assertNotEqual(exported.context.trace_id, 0xABCDEF)


class SamplingTest(parameterized.TestCase):
    @parameterized.named_parameters(
        ("unsampled_parent", DEFAULT_ON, True, False),
        ("always_off", ALWAYS_OFF, False, True),
        ("ratio_zero", TraceIdRatioBased(0.0), False, True),
    )
    def test_not_sampled_is_not_recorded_or_exported(
        self, sampler: object, has_parent: bool, parent_sampled: bool
    ) -> None:
        ended: list[ReadableSpan] = []
        spans = server_span.ServerSpans(provider(sampler), SCOPE, ended.append)
        context = parent(parent_sampled) if has_parent else None
        span = spans.start("s/m", context, ATTRIBUTES)
        self.assertFalse(span.is_recording())
        self.assertFalse(span.get_span_context().trace_flags.sampled)
        self.assertTrue(span.get_span_context().is_valid)  # children still join its trace
        span.end()
        self.assertEqual(ended, [])

    def test_sdk_disabled_starts_no_span_as_the_sdks_tracer(self) -> None:
        with mock.patch.dict(os.environ, {"OTEL_SDK_DISABLED": "true"}):
            tracer_provider = provider()
        ended: list[ReadableSpan] = []
        spans = server_span.ServerSpans(tracer_provider, SCOPE, ended.append)
        span = spans.start("s/m", parent(True), ATTRIBUTES)
        sdk = tracer_provider.get_tracer(SCOPE.name).start_span("s/m", parent(True))
        self.assertEqual(span.get_span_context(), sdk.get_span_context())
        self.assertFalse(span.is_recording())
        span.end()
        self.assertEqual(ended, [])

    def test_limits_come_from_the_environment(self) -> None:
        with mock.patch.dict(os.environ, {"OTEL_SPAN_ATTRIBUTE_COUNT_LIMIT": "4"}):
            spans = server_span.ServerSpans(provider(), SCOPE, lambda _: None)
        span = spans.start("s/m", None, ATTRIBUTES)
        span.set_attribute("one", 1)
        span.set_attribute("two", 2)
        self.assertEqual(len(span._attributes), 4)


def without_times(span: ReadableSpan) -> bytes:
    """The span's OTLP encoding, its own start and end times zeroed (the two spans started at
    different times; event times are given)."""
    request = encode_spans([span])
    (encoded,) = request.resource_spans[0].scope_spans[0].spans
    encoded.start_time_unix_nano = encoded.end_time_unix_nano = 0
    return request.SerializeToString(deterministic=True)


def json_without_times(span: ReadableSpan) -> dict:
    """ReadableSpan.to_json(), the span's own start and end times left out."""
    fields = json.loads(span.to_json())
    del fields["start_time"], fields["end_time"]
    return fields


if __name__ == "__main__":
    absltest.main()
