"""The export pieces the runtime sets around the OpenTelemetry SDK for cost (docs/observability.md,
"py-spy on the real server"): they must change what is sent in nothing but its cost."""

import os
from unittest import mock

from absl.testing import absltest
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import BatchSpanProcessor
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


if __name__ == "__main__":
    absltest.main()
