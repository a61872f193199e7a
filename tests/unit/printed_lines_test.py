"""What code prints, once the runtime's logs are configured, reaches stdout as whole lines in
order with the log lines: through a real pipe, from real forked processes printing at once, on
an unbuffered stdout as the image's PYTHONUNBUFFERED=1 makes it (where print() is one write per
piece, and a line printed by one worker was cut by another's)."""

from __future__ import annotations

import io
import json
import logging
import multiprocessing
import os
import sys
import threading
from unittest import mock

from absl.testing import absltest

from python.runtime import logs

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


if __name__ == "__main__":
    absltest.main()
