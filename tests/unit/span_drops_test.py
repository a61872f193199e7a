"""span_drops.Drops: every dropped span is reported, in one warning a minute at most, and at
shutdown in one last warning, whatever the minute (issue 24: a collector that hung lost about
9,800 spans under a warning of 1). The minute runs on a clock and timers the test drives."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from absl.testing import absltest

from python.runtime import span_drops

MINUTE = span_drops.DROP_WARNING_SECONDS


class Warnings(logging.Handler):
    """The drop warnings logged while a test runs, from any thread."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.records: list[logging.LogRecord] = []
        self._changed = threading.Condition()

    def emit(self, record: logging.LogRecord) -> None:
        with self._changed:
            self.records.append(record)
            self._changed.notify_all()

    def wait_for(self, count: int, timeout: float = 10.0) -> None:
        with self._changed:
            if not self._changed.wait_for(lambda: len(self.records) >= count, timeout):
                raise AssertionError(f"{len(self.records)} of {count} warnings in {timeout} s")

    def counts(self) -> list[tuple[int, int]]:
        """(dropped_spans, dropped_spans_total) of each warning, in order."""
        with self._changed:
            return [
                (r.fields["dropped_spans"], r.fields["dropped_spans_total"]) for r in self.records
            ]


class FakeTime:
    """The clock Drops reads, and the timers it starts, which run when the clock reaches them."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.timers: list[tuple[float, Callable[[], None]]] = []

    def clock(self) -> float:
        return self.now

    def start_timer(self, seconds: float, function: Callable[[], None]) -> None:
        self.timers.append((self.now + seconds, function))

    def advance(self, seconds: float) -> None:
        self.now += seconds
        due = [t for t in self.timers if t[0] <= self.now]
        self.timers = [t for t in self.timers if t[0] > self.now]
        for _, function in due:
            function()


class DropsTest(absltest.TestCase):
    def setUp(self) -> None:
        super().setUp()
        self.warnings = Warnings()
        telemetry = logging.getLogger("telemetry")
        telemetry.addHandler(self.warnings)
        self.addCleanup(telemetry.removeHandler, self.warnings)
        self.time = FakeTime()
        self.drops = span_drops.Drops(clock=self.time.clock, start_timer=self.time.start_timer)

    def test_first_drop_warns_at_once(self) -> None:
        self.drops.add(3, "queue full")
        self.assertEqual(self.warnings.counts(), [(3, 3)])
        self.assertIn("3 spans dropped", self.warnings.records[0].getMessage())
        self.assertIn("queue full", self.warnings.records[0].getMessage())
        self.assertEqual(self.time.timers, [])  # nothing is left to report

    def test_drops_after_a_warning_are_reported_when_its_minute_ends(self) -> None:
        self.drops.add(1, "queue full")
        self.time.advance(10)
        self.drops.add(2, "queue full")
        self.drops.add(3, "UNAVAILABLE")
        self.assertEqual(self.warnings.counts(), [(1, 1)])  # one warning a minute at most
        self.assertLen(self.time.timers, 1)  # one timer for the minute, not one per drop
        self.time.advance(MINUTE - 10 - 0.001)
        self.assertEqual(self.warnings.counts(), [(1, 1)])
        # No drop follows, and still the minute's drops are reported when it ends.
        self.time.advance(0.001)
        self.assertEqual(self.warnings.counts(), [(1, 1), (5, 6)])
        self.assertIn("UNAVAILABLE", self.warnings.records[1].getMessage())  # the latest
        # That report starts a minute of its own.
        self.time.advance(1)
        self.drops.add(4, "queue full")
        self.time.advance(MINUTE - 1 - 0.001)
        self.assertEqual(self.warnings.counts(), [(1, 1), (5, 6)])
        self.time.advance(0.001)
        self.assertEqual(self.warnings.counts(), [(1, 1), (5, 6), (4, 10)])
        self.assertEqual(self.time.timers, [])

    def test_drop_after_a_quiet_minute_warns_at_once(self) -> None:
        self.drops.add(1, "queue full")
        self.time.advance(MINUTE)
        self.drops.add(2, "queue full")
        self.assertEqual(self.warnings.counts(), [(1, 1), (2, 3)])
        self.assertEqual(self.time.timers, [])

    def test_close_reports_the_rest_within_the_minute(self) -> None:
        self.drops.add(1, "queue full")
        self.drops.add(2, "queue full")
        self.drops.close(unsent=5)
        self.assertEqual(self.warnings.counts(), [(1, 1), (7, 8)])
        last = self.warnings.records[-1]
        self.assertIn("7 spans dropped at shutdown", last.getMessage())
        self.assertIn("queue full; 5 still queued or being exported", last.getMessage())
        self.assertEqual(last.fields["unsent_spans"], 5)
        # The last line is the last: what ends later was counted as unsent, and the minute's
        # timer finds nothing to say.
        self.drops.add(4, "UNAVAILABLE")
        self.time.advance(MINUTE)
        self.assertLen(self.warnings.records, 2)
        self.assertEqual(self.drops.total, 8)

    def test_a_second_close_counts_nothing_again(self) -> None:
        # ServerTelemetry.shutdown run twice (a second caller, a retry) reported the same
        # unsent spans twice, and the total grew by them twice.
        self.drops.add(1, "queue full")
        self.drops.close(unsent=5)
        self.drops.close(unsent=5)
        self.assertEqual(self.warnings.counts(), [(1, 1), (5, 6)])
        self.assertEqual(self.drops.total, 6)

    def test_a_timer_that_cannot_start_fails_no_span(self) -> None:
        # Drops.add runs where a span ends (the event loop, in the call's end); a thread that
        # cannot start (no memory, the pids limit, interpreter shutdown) raised there, and left
        # no later drop of the minute a timer.
        def cannot_start(seconds: float, function: Callable[[], None]) -> None:
            raise RuntimeError("can't start new thread")

        drops = span_drops.Drops(clock=self.time.clock, start_timer=cannot_start)
        drops.add(1, "queue full")
        drops.add(2, "queue full")  # no exception
        drops._start_timer = self.time.start_timer  # threads can start again
        drops.add(3, "queue full")
        self.time.advance(MINUTE)
        self.assertEqual(self.warnings.counts(), [(1, 1), (5, 6)])

    def test_close_with_nothing_lost_says_nothing(self) -> None:
        self.drops.add(1, "queue full")
        self.drops.close(unsent=0)
        self.assertEqual(self.warnings.counts(), [(1, 1)])

    def test_the_timer_runs_on_its_own(self) -> None:
        drops = span_drops.Drops(warning_seconds=0.05)  # the real clock and timer thread
        drops.add(1, "queue full")
        drops.add(2, "queue full")
        self.warnings.wait_for(2)
        # The second add came within the 50 ms, or (a slow machine) after them: either way
        # every drop is reported, in two warnings.
        self.assertEqual(self.warnings.counts(), [(1, 1), (2, 3)])


if __name__ == "__main__":
    absltest.main()
