"""What code prints, once the runtime's logs are configured, reaches stdout as whole lines in
order with the log lines: through a real pipe, from real forked processes printing at once, on
an unbuffered stdout as the image's PYTHONUNBUFFERED=1 makes it (where print() is one write per
piece, and a line printed by one worker was cut by another's)."""

from __future__ import annotations

import collections
import faulthandler
import io
import json
import logging
import multiprocessing
import os
import select
import signal
import sys
import threading
import time
from unittest import mock

from absl.testing import absltest

from python.runtime import logs
from python.runtime.printed_lines import PrintedLines

WORKERS = 4
LINES_PER_WORKER = 300
PADDING = "x" * 300


def _print_and_log(worker: int) -> None:
    """A worker's handler code: prints in pieces (separators, numbers) and logs, many times."""
    for n in range(LINES_PER_WORKER):
        print("printed", worker, n, PADDING, sep=" ")
        logging.getLogger("worker").info("logged %d %d", worker, n)


class PrintedLinesTest(absltest.TestCase):
    def setUp(self) -> None:
        super().setUp()
        read_end, write_end = os.pipe()
        self.read_end = read_end
        self.addCleanup(os.close, read_end)
        self.addCleanup(os.close, write_end)
        # stdout as PYTHONUNBUFFERED=1 makes it: every write() of text is a write() on the pipe.
        unbuffered = io.TextIOWrapper(
            io.FileIO(write_end, "w", closefd=False), encoding="utf-8", write_through=True
        )
        patcher = mock.patch.object(sys, "stdout", unbuffered)
        patcher.start()
        self.addCleanup(patcher.stop)  # first: configure() replaced sys.stdout under the patch
        root = logging.getLogger()
        self.addCleanup(setattr, root, "handlers", root.handlers[:])
        self.addCleanup(root.setLevel, root.level)
        logs.configure(logs.JSON)
        self.addCleanup(setattr, logs, "_configured", None)
        self.addCleanup(setattr, logs, "_json_lines", None)
        self.chunks: list[bytes] = []
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        while chunk := os.read(self.read_end, 1 << 16):
            self.chunks.append(chunk)

    def lines(self) -> list[str]:
        """Everything written so far, as lines (the reader drains the pipe as it fills)."""
        print("end of test", flush=True)
        while not b"".join(self.chunks).endswith(b"end of test\n"):
            self.reader.join(0.01)
        return b"".join(self.chunks).decode().splitlines()[:-1]

    def test_workers_printing_at_once_never_cut_a_line(self) -> None:
        fork = multiprocessing.get_context("fork")
        workers = [fork.Process(target=_print_and_log, args=(n,)) for n in range(WORKERS)]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join(timeout=60)
            self.assertEqual(worker.exitcode, 0)
        printed, logged = [], []
        for line in self.lines():
            if line.startswith("{"):
                logged.append(json.loads(line)["message"])
            else:
                printed.append(line)
        everyone = [(w, n) for w in range(WORKERS) for n in range(LINES_PER_WORKER)]
        self.assertCountEqual(printed, [f"printed {w} {n} {PADDING}" for w, n in everyone])
        self.assertCountEqual(logged, [f"logged {w} {n}" for w, n in everyone])

    def test_printed_and_logged_lines_keep_their_order(self) -> None:
        logging.getLogger("server").info("one")
        print("two")
        logging.getLogger("server").warning("three")
        logs.flush()
        lines = self.lines()
        self.assertEqual(json.loads(lines[0])["message"], "one")
        self.assertEqual(lines[1], "two")
        self.assertEqual(json.loads(lines[2])["message"], "three")
        self.assertLen(lines, 3)

    def test_a_line_without_its_newline_goes_out_at_the_flush(self) -> None:
        print("progress: 50%", end="")
        logs.flush()  # as every exit path of the runtime's processes does
        print("done")
        self.assertEqual(self.lines(), ["progress: 50%", "done"])

    def test_what_does_not_encode_is_replaced_not_raised(self) -> None:
        print("bad \udcff byte")
        self.assertEqual(self.lines(), ["bad ? byte"])

    def test_printing_while_a_log_line_is_formatted_does_not_deadlock(self) -> None:
        # A log argument whose str() prints runs under the handler's lock; a print on another
        # thread must not hold this stream's lock while it waits for the handler's.
        formatting, printing = threading.Event(), threading.Event()

        class Chatty:
            def __str__(self) -> str:
                formatting.set()
                printing.wait(5)
                time.sleep(0.2)  # the other thread is now waiting for the handler's lock
                print("from str()")
                return "chatty"

        logger = threading.Thread(
            target=lambda: logging.getLogger("server").info("%s", Chatty()), daemon=True
        )
        logger.start()
        formatting.wait(5)

        def other() -> None:
            printing.set()
            print("from another thread")

        printer = threading.Thread(target=other, daemon=True)
        printer.start()
        logger.join(5)
        printer.join(5)
        self.assertFalse(logger.is_alive() or printer.is_alive(), "deadlocked")
        logs.flush()
        self.assertCountEqual(
            [
                json.loads(line)["message"] if line.startswith("{") else line
                for line in self.lines()
            ],
            ["from str()", "chatty", "from another thread"],
        )


class RecordedLines:
    """A LineWriter that keeps what it is given."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def write(self, level: int, line: str) -> None:
        self.lines.append(line)

    def flush(self) -> None:
        pass


class PrintedLinesUnitTest(absltest.TestCase):
    def setUp(self) -> None:
        super().setUp()
        self.recorded = RecordedLines()
        self.printed = PrintedLines(self.recorded, 1)

    def test_many_writes_without_a_newline_take_linear_time(self) -> None:
        # print(".", end="") in a loop: joining the kept text at every write was quadratic
        # (100,000 dots took 2.7 s, 200,000 took 12.7 s, holding the GIL).
        pieces = 400_000
        started = time.monotonic()
        for _ in range(pieces):
            self.printed.write(".")
        self.printed.write("\n")
        self.assertLess(time.monotonic() - started, 2.0)
        limit = PrintedLines.MAX_KEPT
        self.assertEqual(self.recorded.lines, ["." * limit] * 6 + ["." * (pieces - 6 * limit)])

    def test_a_line_past_the_limit_goes_out_without_waiting_for_its_newline(self) -> None:
        # Memory stays bounded: a progress bar of \r, or a stream of dots, never ends its line.
        self.printed.write("x" * (PrintedLines.MAX_KEPT - 1))
        self.assertEqual(self.recorded.lines, [])
        self.printed.write("yz")
        self.assertEqual(self.recorded.lines, ["x" * (PrintedLines.MAX_KEPT - 1) + "yz"])
        self.printed.write("\n")  # ends only what went out already: no empty line
        self.printed.write("\n")  # an empty line printed as one
        self.assertEqual(self.recorded.lines[1:], [""])

    def test_a_whole_line_larger_than_the_limit_stays_one_line(self) -> None:
        big = "b" * (3 * PrintedLines.MAX_KEPT)
        print(big, file=self.printed)
        print("next", file=self.printed)
        self.assertEqual(self.recorded.lines, [big, "next"])

    def test_the_newline_after_a_flushed_part_makes_no_empty_line(self) -> None:
        # print("50%", end="", flush=True) then print(): the line went out at the flush, and
        # the newline that ends it made an empty line of its own.
        print("working...", end="", file=self.printed, flush=True)
        print(file=self.printed)
        print(file=self.printed)  # an empty line printed as one
        print("a", end="", file=self.printed, flush=True)
        print(" done", file=self.printed)
        self.assertEqual(self.recorded.lines, ["working...", "", "a", " done"])

    def test_a_flush_from_a_signal_handler_inside_a_write_does_not_deadlock(self) -> None:
        # The worker's SIGTERM handler before serving (workers._exit_before_serving) calls
        # logs.flush(), which flushes this, on the thread the signal interrupted: a
        # non-reentrant lock held by an interrupted write hung the worker until SIGKILL.
        # Here a timer signal flushes every 0.2 ms while the main thread prints.
        faulthandler.dump_traceback_later(20, exit=True)  # a deadlock fails, not hangs
        self.addCleanup(faulthandler.cancel_dump_traceback_later)
        previous = signal.signal(signal.SIGALRM, lambda *_: self.printed.flush())
        self.addCleanup(signal.signal, signal.SIGALRM, previous)
        signal.setitimer(signal.ITIMER_REAL, 0.0002, 0.0002)
        self.addCleanup(signal.setitimer, signal.ITIMER_REAL, 0)
        for n in range(100_000):
            print("line", n, file=self.printed)
        signal.setitimer(signal.ITIMER_REAL, 0)
        self.printed.flush()
        # Flushes may cut lines (and one in a write may send the kept rest first): nothing is
        # lost, and nothing is sent twice.
        self.assertEqual(
            collections.Counter("".join(self.recorded.lines)),
            collections.Counter("".join(f"line {n}" for n in range(100_000))),
        )

    def test_a_forked_child_prints_even_if_another_thread_held_the_lock(self) -> None:
        # fork() copies a lock held by another thread as held, for ever: the child's first
        # print hung (a fork from a thread while another thread prints).
        self.printed.write("the parent's partial line")
        holding, release = threading.Event(), threading.Event()

        def hold() -> None:
            with self.printed._lock:
                holding.set()
                release.wait()

        holder = threading.Thread(target=hold, daemon=True)
        holder.start()
        holding.wait()
        read_end, write_end = os.pipe()
        pid = os.fork()
        if pid == 0:  # the child: prints, then says what the writer got
            try:
                self.printed.write("child\n")
                self.printed.flush()
                os.write(write_end, json.dumps(self.recorded.lines).encode())
            finally:
                os._exit(0)
        release.set()
        holder.join()
        os.close(write_end)
        self.addCleanup(os.close, read_end)
        ready = select.select([read_end], [], [], 10)[0]
        if not ready:
            os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        self.assertTrue(ready, "the forked child hung on the lock")
        # The parent's kept text is the parent's to write, not the child's as well.
        self.assertEqual(json.loads(os.read(read_end, 1 << 16)), ["child"])

    def test_bytes_written_to_buffer_go_out_as_lines(self) -> None:
        # Library code writes bytes to sys.stdout.buffer: that raised AttributeError.
        self.printed.buffer.write(b"caf\xc3")  # a character cut between two writes
        self.printed.buffer.write(bytearray(b"\xa9 bytes\nrest"))
        self.printed.buffer.flush()
        self.assertEqual(self.recorded.lines, ["café bytes", "rest"])
        self.assertTrue(self.printed.buffer.writable())
        self.assertEqual(self.printed.buffer.fileno(), 1)

    def test_a_text_wrapper_around_buffer_writes_the_same_lines(self) -> None:
        # sys.stdout = io.TextIOWrapper(sys.stdout.buffer, encoding="utf-8"): an idiom to force
        # the encoding, that services and libraries use.
        wrapper = io.TextIOWrapper(self.printed.buffer, encoding="utf-8", line_buffering=True)
        print("wrapped", "line", file=wrapper)
        print("no newline", end="", file=wrapper)
        wrapper.flush()
        self.assertEqual(self.recorded.lines, ["wrapped line", "no newline"])

    def test_reconfigure_is_accepted(self) -> None:
        # sys.stdout.reconfigure(line_buffering=True), a common line in a container's main or
        # in services(), raised AttributeError and the server did not start.
        self.printed.reconfigure(line_buffering=True, write_through=True, encoding="utf-8")
        print("after", file=self.printed)
        self.assertEqual(self.recorded.lines, ["after"])
        self.assertEqual(self.printed.errors, "replace")


if __name__ == "__main__":
    absltest.main()
