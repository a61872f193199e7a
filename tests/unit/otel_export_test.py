"""The export pieces the runtime sets around the OpenTelemetry SDK for cost (docs/observability.md,
"py-spy on the real server"): they must change what is sent in nothing but its cost."""

import logging
import os
import threading
from collections.abc import Sequence
from unittest import mock

from absl.testing import absltest
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult
from opentelemetry.trace import SpanContext, TraceFlags

from python.runtime import otel_export, span_drops


def _span(sampled: bool = True) -> ReadableSpan:
    flags = TraceFlags(TraceFlags.SAMPLED if sampled else TraceFlags.DEFAULT)
    return ReadableSpan("s", SpanContext(1, 2, is_remote=False, trace_flags=flags))


class ResourceTest(absltest.TestCase):
    def test_hashed_once_is_the_same_resource(self) -> None:
        with mock.patch.dict(os.environ, {"K_SERVICE": "ping"}):
            resource = otel_export._resource()
        self.assertEqual(resource.attributes["service.name"], "ping")
        plain = Resource(dict(resource.attributes), resource.schema_url)  # the SDK's own class
        self.assertEqual(resource, plain)
        self.assertEqual(hash(resource), hash(plain))
        self.assertEqual({plain: 1}[resource], 1)  # how the encoder groups spans
        self.assertNotEqual(resource, Resource({"service.name": "other"}))


class ExportBatchTest(absltest.TestCase):
    def test_default_is_ours_within_the_queue(self) -> None:
        with mock.patch.dict(os.environ, {}, clear=True):
            self.assertEqual(otel_export._export_batch_size(2048), otel_export.EXPORT_BATCH_SPANS)
            self.assertEqual(otel_export._export_batch_size(8), 8)

    def test_setting_is_left_to_the_sdk(self) -> None:
        with mock.patch.dict(os.environ, {"OTEL_BSP_MAX_EXPORT_BATCH_SIZE": "4"}):
            self.assertIsNone(otel_export._export_batch_size(2048))


class BoundedQueueTest(absltest.TestCase):
    def test_drops_past_the_size_until_spans_are_taken(self) -> None:
        inner = mock.create_autospec(BatchSpanProcessor, instance=True)
        drops = span_drops.Drops()
        queue = span_drops.BoundedQueue(inner, 2, drops)
        for _ in range(3):
            queue.on_end(_span())
        queue.on_end(_span(sampled=False))  # never queued, never counted
        self.assertEqual(inner.on_end.call_count, 2)
        self.assertEqual(drops.total, 1)
        queue.taken(2)
        queue.on_end(_span())
        self.assertEqual(inner.on_end.call_count, 3)
        self.assertEqual(drops.total, 1)


class Collector(SpanExporter):
    """Stands in for the OTLP exporter: answers `result`, or holds each export until
    `released` when `hang`."""

    def __init__(self, result: SpanExportResult, hang: bool = False) -> None:
        self.result = result
        self.hang = hang
        self.exporting = threading.Event()
        self.released = threading.Event()
        self.delivered = 0

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        self.exporting.set()
        if self.hang:
            self.released.wait()
        if self.result is SpanExportResult.SUCCESS:
            self.delivered += len(spans)
        return self.result

    def shutdown(self) -> None:
        pass


class ShutdownTest(absltest.TestCase):
    """At shutdown every span the collector did not take is in a warning: the last one counts
    those not reported yet, with those still queued or in an export the server gave up on."""

    def telemetry(
        self, collector: Collector
    ) -> tuple[otel_export.ServerTelemetry, span_drops.BoundedQueue]:
        """A server's span pipeline as start() builds it (queue 8, batches of 4), on
        `collector`, and the queue that spans end in."""
        exporter = span_drops.CountingExporter(collector)
        batches = BatchSpanProcessor(
            exporter, max_queue_size=8, max_export_batch_size=4, schedule_delay_millis=10
        )
        self.addCleanup(batches.shutdown)
        queue = span_drops.BoundedQueue(batches, 8, span_drops.Drops())
        exporter.queue = queue
        provider = TracerProvider(shutdown_on_exit=False, active_span_processor=queue)
        return otel_export.ServerTelemetry(provider, queue, None, None), queue

    def test_hanging_collector_every_span_is_counted(self) -> None:
        collector = Collector(SpanExportResult.SUCCESS, hang=True)
        self.addCleanup(collector.released.set)
        telemetry, spans = self.telemetry(collector)
        with (
            mock.patch.object(otel_export, "SHUTDOWN_SECONDS", 0.2),
            self.assertLogs("telemetry", logging.WARNING) as logged,
        ):
            spans.on_end(_span())
            self.assertTrue(collector.exporting.wait(10), "the first export never started")
            for _ in range(18):  # 8 fill the queue, 10 are dropped: 1 warning, 9 unreported
                spans.on_end(_span())
            telemetry.shutdown()

        first, last = logged.records
        self.assertEqual(first.fields["dropped_spans"], 1)
        # 1 in the export that hangs, 8 queued, 10 dropped (the first of them reported then).
        self.assertIn("at shutdown", last.getMessage())
        self.assertEqual(last.fields["dropped_spans_total"], 19)
        self.assertEqual(last.fields["dropped_spans"], 18)
        self.assertEqual(last.fields["unsent_spans"], 9)

    def test_refusing_collector_every_span_is_counted(self) -> None:
        telemetry, spans = self.telemetry(Collector(SpanExportResult.FAILURE))
        with self.assertLogs("telemetry", logging.WARNING) as logged:
            for _ in range(5):  # two exports at least (batches of 4): the first one warns
                spans.on_end(_span())
            telemetry.shutdown()

        *_, last = logged.records
        self.assertIn("at shutdown", last.getMessage())
        self.assertEqual(last.fields["dropped_spans_total"], 5)
        self.assertEqual(sum(w.fields["dropped_spans"] for w in logged.records), 5)

    def test_delivered_spans_are_not_counted(self) -> None:
        collector = Collector(SpanExportResult.SUCCESS)
        telemetry, spans = self.telemetry(collector)
        with self.assertNoLogs("telemetry", logging.WARNING):
            for _ in range(5):
                spans.on_end(_span())
            telemetry.shutdown()
        self.assertEqual(collector.delivered, 5)


if __name__ == "__main__":
    absltest.main()
