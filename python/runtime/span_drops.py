"""Spans that never reach the collector, counted and reported in one warning a minute at most
(otel_export.py builds these around the SDK's batch processor and the OTLP exporter): a
collector that is down or slow must never hold a call, nor fill the log with a line per
failure.
"""

from __future__ import annotations

import logging
import threading
import time

from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult

logger = logging.getLogger("telemetry")

DROP_WARNING_SECONDS = 60.0


class Drops:
    """Counts spans that never reached the collector; warns at most once a minute."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.total = 0
        self._unreported = 0
        self._warned_at: float | None = None
        # The exporter's latest error, for the warning (its own lines are not printed).
        self.last_error = "export failed"

    def add(self, count: int, reason: str) -> None:
        with self._lock:
            self.total += count
            self._unreported += count
            now = time.monotonic()
            if self._warned_at is not None and now - self._warned_at < DROP_WARNING_SECONDS:
                return
            self._warned_at, unreported, self._unreported = now, self._unreported, 0
        logger.warning(
            "telemetry: %d spans dropped (collector down or slow): %s",
            unreported,
            reason,
            extra={"fields": {"dropped_spans": unreported, "dropped_spans_total": self.total}},
        )


class BoundedQueue(SpanProcessor):
    """The batch processor behind a count of the spans waiting in its queue: a span that
    would overflow it is dropped here, counted (the SDK's own line per drop is not).

    It is the provider's only processor (no multi-processor's loop per span), and its count
    takes no lock: each of its two ints has one writer, `on_end` on the event loop's thread
    (where the calls' and the relay's spans end) and `taken` under the SDK's export lock. A
    span ended on another thread could at worst leave the count one off; the SDK's own queue
    stays bounded either way.
    """

    def __init__(self, inner: BatchSpanProcessor, size: int, drops: Drops) -> None:
        self._inner = inner
        self._size = size
        self._drops = drops
        self._queued_total = 0  # written by on_end only
        self._taken_total = 0  # written by taken only (in exports, one at a time)

    def on_end(self, span: ReadableSpan) -> None:
        if not span.context.trace_flags.sampled:
            return  # the batch processor keeps only sampled spans
        if self._queued_total - self._taken_total >= self._size:
            self._drops.add(1, "queue full")
            return
        self._queued_total += 1
        self._inner.on_end(span)

    def taken(self, count: int) -> None:
        """`count` spans left the queue for the exporter."""
        self._taken_total += count

    def shutdown(self) -> None:
        self._inner.shutdown()

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        return self._inner.force_flush(timeout_millis)


class KeepExportErrors(logging.Filter):
    """Keeps the exporter's latest failure for the drop warning instead of printing each."""

    def __init__(self, drops: Drops) -> None:
        super().__init__()
        self._drops = drops

    def filter(self, record: logging.LogRecord) -> bool:
        self._drops.last_error = record.getMessage()[:200]
        return False


class CountingExporter(SpanExporter):
    """The OTLP exporter, counting the spans of batches it failed to deliver."""

    def __init__(self, inner: SpanExporter, drops: Drops) -> None:
        self._inner = inner
        self._drops = drops
        self.queue: BoundedQueue | None = None  # set once the queue is built around this

    def export(self, spans: list[ReadableSpan]) -> SpanExportResult:
        if self.queue is not None:
            self.queue.taken(len(spans))
        result = self._inner.export(spans)
        if result is not SpanExportResult.SUCCESS:
            self._drops.add(len(spans), self._drops.last_error)
        return result

    def shutdown(self) -> None:
        self._inner.shutdown()

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        return self._inner.force_flush(timeout_millis)
