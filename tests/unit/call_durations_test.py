"""call_durations: the runtime's own rpc.server.duration must export what the SDK's Histogram
would have for the same calls (buckets, count, sum, min, max, exemplars), only cheaper."""

from __future__ import annotations

import os
import time
from unittest import mock

from absl.testing import absltest
from opentelemetry import trace
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import (
    AggregationTemporality,
    HistogramDataPoint,
    InMemoryMetricReader,
    Metric,
    MetricExporter,
    MetricExportResult,
    MetricsData,
    ResourceMetrics,
    ScopeMetrics,
)
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import SpanContext, TraceFlags

from python.runtime import call_durations

# Every bucket's edge and both sides of it, and past the last (a duration is never negative).
VALUES_MS = (0.0, 0.001, 4.999, 5.0, 5.001, 75.0, 999.9, 10000.0, 10000.5, 123456.0)


def attributes(method: str, code: int) -> dict[str, str | int]:
    return {"rpc.method": method, "rpc.grpc.status_code": code}


def span_context(span_id: int, sampled: bool) -> SpanContext:
    flags = TraceFlags(TraceFlags.SAMPLED if sampled else TraceFlags.DEFAULT)
    return SpanContext(0xABC, span_id, is_remote=False, trace_flags=flags)


def sdk_points(calls: list[tuple[float, SpanContext]], exemplars: str) -> list:
    """What the SDK's own Histogram exports for `calls` (value, the span current at the time)."""
    reader = InMemoryMetricReader()
    with mock.patch.dict(os.environ, {"OTEL_METRICS_EXEMPLAR_FILTER": exemplars}):
        provider = MeterProvider(metric_readers=[reader], shutdown_on_exit=False)
    histogram = provider.get_meter("t").create_histogram(call_durations.NAME, unit="ms")
    for value, span in calls:
        current = trace.set_span_in_context(trace.NonRecordingSpan(span))
        histogram.record(value, attributes("Send", 0), context=current)
    (metric,) = reader.get_metrics_data().resource_metrics[0].scope_metrics[0].metrics
    provider.shutdown()
    return list(metric.data.data_points)


class SameAsTheSdkTest(absltest.TestCase):
    def check(self, exemplars: str) -> HistogramDataPoint:
        calls = [(v, span_context(i + 1, sampled=i % 2 == 0)) for i, v in enumerate(VALUES_MS)]
        durations = call_durations.CallDurations(attributes, exemplars, delta=False)
        for value, span in calls:
            durations.record("Send", 0, value, span)
        (ours,) = durations.metric().data.data_points
        (sdk,) = sdk_points(calls, exemplars)
        self.assertEqual(dict(ours.attributes), dict(sdk.attributes))
        self.assertEqual(list(ours.explicit_bounds), list(sdk.explicit_bounds))
        self.assertEqual(list(ours.bucket_counts), list(sdk.bucket_counts))
        self.assertEqual(
            (ours.count, ours.sum, ours.min, ours.max), (sdk.count, sdk.sum, sdk.min, sdk.max)
        )

        def kept(points: list) -> list[tuple]:
            return sorted((e.value, e.span_id, e.trace_id) for e in points)

        self.assertEqual(kept(ours.exemplars), kept(sdk.exemplars))
        return ours

    def test_trace_based(self) -> None:
        ours = self.check("trace_based")
        self.assertTrue(ours.exemplars)  # sampled calls left some

    def test_exemplars_go_out_once_as_the_sdks_reservoir_resets(self) -> None:
        # The SDK's reservoir is emptied at each collection, cumulative too: an exemplar is in
        # the one export after its call, not in every later one.
        reader = InMemoryMetricReader()
        with mock.patch.dict(os.environ, {"OTEL_METRICS_EXEMPLAR_FILTER": "always_on"}):
            provider = MeterProvider(metric_readers=[reader], shutdown_on_exit=False)
        histogram = provider.get_meter("t").create_histogram(call_durations.NAME, unit="ms")
        durations = call_durations.CallDurations(attributes, "always_on", delta=False)
        histogram.record(1.0, attributes("Send", 0))
        durations.record("Send", 0, 1.0, None)
        for _ in range(2):
            (metric,) = reader.get_metrics_data().resource_metrics[0].scope_metrics[0].metrics
            (sdk,) = metric.data.data_points
            (ours,) = durations.metric().data.data_points
            self.assertEqual(len(ours.exemplars), len(sdk.exemplars))
            self.assertEqual(ours.count, sdk.count)
        provider.shutdown()

    def test_always_on_and_off(self) -> None:
        self.check("always_on")
        self.assertEqual(list(self.check("always_off").exemplars), [])


def counts(metric: Metric) -> dict[int, int]:
    return {p.attributes["rpc.grpc.status_code"]: p.count for p in metric.data.data_points}


class SeriesTest(absltest.TestCase):
    def test_one_point_per_method_and_code_cumulative(self) -> None:
        durations = call_durations.CallDurations(attributes, "always_off", delta=False)
        self.assertIsNone(durations.metric())
        durations.record("Send", 0, 1.0, None)
        durations.record("Send", 14, 2.0, None)
        durations.record("Send", 0, 3.0, None)
        first = durations.metric()
        self.assertEqual(first.data.aggregation_temporality, AggregationTemporality.CUMULATIVE)
        counts = {p.attributes["rpc.grpc.status_code"]: p.count for p in first.data.data_points}
        self.assertEqual(counts, {0: 2, 14: 1})
        durations.record("Send", 0, 4.0, None)
        again = {
            p.attributes["rpc.grpc.status_code"]: p.count
            for p in durations.metric().data.data_points
        }
        self.assertEqual(again, {0: 3, 14: 1})  # still counted since the start
        # The first snapshot is not changed by later calls.
        self.assertEqual({p.count for p in first.data.data_points}, {2, 1})

    def test_delta_counts_each_call_once(self) -> None:
        durations = call_durations.CallDurations(attributes, "always_off", delta=True)
        durations.record("Send", 0, 1.0, None)
        first = durations.metric()
        self.assertEqual(first.data.aggregation_temporality, AggregationTemporality.DELTA)
        self.assertEqual([p.count for p in first.data.data_points], [1])
        self.assertIsNone(durations.metric())
        durations.record("Send", 0, 1.0, None)
        (point,) = durations.metric().data.data_points
        self.assertEqual(point.count, 1)
        self.assertGreaterEqual(
            point.start_time_unix_nano, first.data.data_points[0].time_unix_nano
        )

    def test_a_series_starts_as_the_sdks_does(self) -> None:
        # The SDK starts a series at the collection before its first call (at the call itself
        # before any): one first seen after an export does not claim the calls before it.
        for delta in (False, True):
            durations = call_durations.CallDurations(attributes, "always_off", delta=delta)
            before = time.time_ns()
            durations.record("Send", 0, 1.0, None)
            (first,) = durations.metric().data.data_points
            self.assertGreaterEqual(first.start_time_unix_nano, before)
            durations.record("Send", 14, 1.0, None)
            late = next(
                p
                for p in durations.metric().data.data_points
                if p.attributes["rpc.grpc.status_code"] == 14
            )
            self.assertEqual(late.start_time_unix_nano, first.time_unix_nano)

    def test_unknown_filter_is_the_sdk_default(self) -> None:
        with mock.patch.dict(os.environ, {"OTEL_METRICS_EXEMPLAR_FILTER": "sometimes"}):
            self.assertEqual(call_durations.exemplar_filter(), "trace_based")


class Recording(MetricExporter):
    def __init__(self) -> None:
        super().__init__()
        self.sent: list[MetricsData] = []

    def export(
        self, metrics_data: MetricsData, timeout_millis: float = 0, **_
    ) -> MetricExportResult:
        self.sent.append(metrics_data)
        return MetricExportResult.SUCCESS

    def force_flush(self, timeout_millis: float = 0) -> bool:
        return True

    def shutdown(self, timeout_millis: float = 0, **_) -> None:
        pass


class ExporterTest(absltest.TestCase):
    def test_added_to_the_runtimes_scope_beside_the_sdks_metrics(self) -> None:
        scope = InstrumentationScope("python.runtime")
        inner = Recording()
        exporter = call_durations.WithCallDurations(inner, scope)
        self.assertFalse(exporter.delta)
        exporter.durations = call_durations.CallDurations(attributes, "always_off", delta=False)
        collected = MetricsData([ResourceMetrics(Resource({}), [ScopeMetrics(scope, [], "")], "")])
        exporter.export(collected)  # no call yet: as collected
        exporter.durations.record("Send", 0, 1.0, None)
        exporter.export(collected)
        first, second = inner.sent
        self.assertIs(first, collected)
        (scope_metrics,) = second.resource_metrics[0].scope_metrics
        self.assertEqual([m.name for m in scope_metrics.metrics], [call_durations.NAME])

    def test_delta_when_the_exporter_prefers_it(self) -> None:
        with mock.patch.dict(
            os.environ, {"OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE": "delta"}
        ):
            from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import (
                OTLPMetricExporter,
            )

            inner = OTLPMetricExporter(endpoint="localhost:1", insecure=True)
        exporter = call_durations.WithCallDurations(inner, InstrumentationScope("s"))
        self.assertTrue(exporter.delta)
        inner.shutdown()


if __name__ == "__main__":
    absltest.main()
