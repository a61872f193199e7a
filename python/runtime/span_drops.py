"""Spans that never reach the collector, counted and reported in one warning a minute at most
(otel_export.py builds these around the SDK's batch processor and the OTLP exporter): a
collector that is down or slow must never hold a call, nor fill the log with a line per
failure.

The count must also be whole, or the warning misleads: drops counted after a minute's warning
are reported when that minute ends, by a timer, even if no drop follows (else a collector that
stops for good would lose thousands of spans under a warning of one), and at shutdown a last
warning counts what was never reported, with the spans still queued or in an export that the
server no longer waits for.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult

logger = logging.getLogger("telemetry")

DROP_WARNING_SECONDS = 60.0

# Runs a function once after a delay, on another thread: `(seconds, function)`.
StartTimer = Callable[[float, Callable[[], None]], None]


def _start_daemon_timer(seconds: float, function: Callable[[], None]) -> None:
    timer = threading.Timer(seconds, function)
    timer.daemon = True  # a report still pending must not hold the process's exit
    timer.start()


class Drops:
    """Counts spans that never reached the collector; warns at most once a minute, and once
    more at shutdown (`close`).

    `warning_seconds`, `clock` and `start_timer` are the minute, the time and the timer, for
    tests to replace.
    """

    def __init__(
        self,
        warning_seconds: float = DROP_WARNING_SECONDS,
        clock: Callable[[], float] = time.monotonic,
        start_timer: StartTimer = _start_daemon_timer,
    ) -> None:
        self._warning_seconds = warning_seconds
        self._clock = clock
        self._start_timer = start_timer
        self._lock = threading.Lock()
        self.total = 0
        self._unreported = 0
        self._reason = ""  # of the latest drop, for the warning
        self._warned_at: float | None = None
        self._trailing = False  # a report is due when the minute of the last warning ends
        self._closed = False
        # The exporter's latest error, for the warning (its own lines are not printed).
        self.last_error = "export failed"

    def add(self, count: int, reason: str) -> None:
        with self._lock:
            if self._closed:
                return  # the last warning counted these spans as unsent already
            self.total += count
            self._unreported += count
            self._reason = reason
            now = self._clock()
            if self._warned_at is not None and now - self._warned_at < self._warning_seconds:
                if not self._trailing:  # one timer per minute, at its first drop
                    wait = self._warned_at + self._warning_seconds - now
                    try:
                        self._start_timer(wait, self._report_trailing)
                        self._trailing = True
                    except RuntimeError:
                        # No thread now (memory, the pids limit, interpreter shutdown): this
                        # runs where a span ends, which must not fail; the next drop tries
                        # again, and close reports them all.
                        pass
                return
            unreported, total = self._take_unreported(now)
        self._warn(unreported, total, reason)

    def _report_trailing(self) -> None:
        with self._lock:
            self._trailing = False
            if self._closed or not self._unreported:
                return
            (unreported, total), reason = self._take_unreported(self._clock()), self._reason
        self._warn(unreported, total, reason)

    def _take_unreported(self, now: float) -> tuple[int, int]:
        """The spans to report now and the total, taken under the lock."""
        self._warned_at, unreported, self._unreported = now, self._unreported, 0
        return unreported, self.total

    @staticmethod
    def _warn(unreported: int, total: int, reason: str) -> None:
        logger.warning(
            "telemetry: %d spans dropped (collector down or slow): %s",
            unreported,
            reason,
            extra={"fields": {"dropped_spans": unreported, "dropped_spans_total": total}},
        )

    def close(self, unsent: int) -> None:
        """The last warning, whatever the minute: the spans not reported yet, and `unsent`
        that will never be sent (the process is exiting). Later drops are not counted, nor a
        second close: its `unsent` are the same spans, counted by the first."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self.total += unsent
            lost, total = self._unreported + unsent, self.total
            reasons = [self._reason] if self._unreported else []
            if unsent:
                reasons.append(f"{unsent} still queued or being exported")
            self._unreported = 0
        if not lost:
            return
        logger.warning(
            "telemetry: %d spans dropped at shutdown (collector down or slow): %s",
            lost,
            "; ".join(reasons),
            extra={
                "fields": {
                    "dropped_spans": lost,
                    "dropped_spans_total": total,
                    "unsent_spans": unsent,
                }
            },
        )


class BoundedQueue(SpanProcessor):
    """The batch processor behind a count of the spans waiting in its queue: a span that
    would overflow it is dropped here, counted (the SDK's own line per drop is not).

    It is the provider's only processor (no multi-processor's loop per span), and its count
    takes no lock on the event loop: each of its two totals has one writer, `on_end` on the
    event loop's thread (where the calls' and the relay's spans end) and `taken` under the
    SDK's export lock. A span ended on another thread could at worst leave the count one off;
    the SDK's own queue stays bounded either way. The exporter's side (`taken`, `exported`,
    once per batch) and `report_unsent` share a lock, so that at shutdown each span is counted
    once: still queued, being exported, or done.
    """

    def __init__(self, inner: BatchSpanProcessor, size: int, drops: Drops) -> None:
        self._inner = inner
        self._size = size
        self._drops = drops
        self._queued_total = 0  # written by on_end only
        self._taken_total = 0  # written by taken only (in exports, one at a time)
        self._exporting = 0  # spans of the export under way
        self._exports = threading.Lock()

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
        with self._exports:
            self._taken_total += count
            self._exporting = count

    def exported(self, count: int, delivered: bool) -> None:
        """The export of the `count` spans last taken has ended."""
        with self._exports:
            self._exporting = 0
            if not delivered:
                self._drops.add(count, self._drops.last_error)

    def report_unsent(self) -> None:
        """Warns of every span not reported yet, as the process exits: those dropped, those
        still queued (the SDK's shutdown exports no more once it gives up) and those of an
        export still under way, which the process will not wait for."""
        with self._exports:
            unsent = self._queued_total - self._taken_total + self._exporting
            self._drops.close(unsent)

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
    """The OTLP exporter, counting the spans of batches it failed to deliver (an exception
    fails the batch too: the SDK logs it and drops the spans)."""

    def __init__(self, inner: SpanExporter) -> None:
        self._inner = inner
        self.queue: BoundedQueue | None = None  # set once the queue is built around this

    def export(self, spans: list[ReadableSpan]) -> SpanExportResult:
        queue = self.queue
        assert queue is not None, "otel_export.start sets the queue before any span ends"
        queue.taken(len(spans))
        result = SpanExportResult.FAILURE
        try:
            result = self._inner.export(spans)
        finally:
            queue.exported(len(spans), result is SpanExportResult.SUCCESS)
        return result

    def shutdown(self) -> None:
        self._inner.shutdown()

    def force_flush(self, timeout_millis: int = 30_000) -> bool:
        return self._inner.force_flush(timeout_millis)
