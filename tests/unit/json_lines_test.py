"""The RPC log line written from pre-encoded parts (logs.JsonLines) is byte for byte the line
JsonFormatter makes from the same fields as a dict: the fast path changes the cost, not the
line. Checked through a real pipe, for calls with and without trace headers, a caller, the
Cloud Run labels, and values that JSON must escape."""

from __future__ import annotations

import contextlib
import datetime
import json
import logging
import multiprocessing
import os
import re
import select
import sys
import threading
import time
from unittest import mock

import grpc
from absl.testing import absltest

from python.runtime import call_boundary, line_writer, logs, rpc_logging

TRACEPARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
CLOUD_TRACE = "105445aa7843bc8bf206b12000100000/1;o=0"
_TIME = re.compile(r'"time": "([^"]*)"')


class FakeContext:
    """What CallRecord reads from grpc.aio's context while the call runs."""

    def __init__(self, peer: str, metadata: tuple[tuple[str, str | bytes], ...]) -> None:
        self._peer = peer
        self._metadata = metadata

    def peer(self) -> str:
        return self._peer

    def invocation_metadata(self) -> tuple[tuple[str, str | bytes], ...]:
        return self._metadata

    def time_remaining(self) -> float | None:
        return None


class UtcTimestampTest(absltest.TestCase):
    def test_as_isoformat_writes_it(self) -> None:
        second = 1_796_000_000 * 1_000_000_000
        for ns in (
            second,  # no microseconds: isoformat writes no fraction
            second + 1_000,
            second + 999_999_999,
            second + 1_000_000_000 + 500,  # the next second, past the cached one
            second + 5 * 86_400 * 1_000_000_000 + 123_456_000,
        ):
            with self.subTest(ns=ns):
                moment = datetime.datetime.fromtimestamp(ns // 1000 / 1e6, datetime.UTC)
                self.assertEqual(logs.utc_timestamp(ns), moment.isoformat())


class JsonLinesTest(absltest.TestCase):
    def setUp(self) -> None:
        super().setUp()
        read_end, write_end = os.pipe()
        self.addCleanup(os.close, read_end)
        self.addCleanup(os.close, write_end)
        self.read_end = read_end
        self.handler = line_writer.LineHandler(write_end)
        with mock.patch.dict(os.environ, {"K_SERVICE": 'ping "v1"', "K_REVISION": "ping-0001"}):
            self.formatter = logs.JsonFormatter()
        self.lines = logs.JsonLines(self.handler, self.formatter)

    def written(self) -> list[str]:
        self.handler.flush()
        return os.read(self.read_end, 1 << 20).decode().splitlines()

    def assert_same_line(self, fast: str, level: int, message: str, fields: dict) -> None:
        """`fast` is JsonFormatter's line for these fields at the time `fast` carries."""
        stamp = _TIME.search(fast)
        self.assertIsNotNone(stamp, fast)
        created = datetime.datetime.fromisoformat(stamp[1]).timestamp()
        slow = self.formatter.line(level, message, created, self.handler.pid, fields)
        # The float of `created` may round a microsecond away: the times are compared apart.
        self.assertEqual(_TIME.sub("", fast), _TIME.sub("", slow))
        self.assertEqual(json.loads(fast), {**json.loads(slow), "time": stamp[1]})

    def test_a_line_from_parts_is_the_formatters_line(self) -> None:
        fields = {"method": "/a.B/C", "code": "OK", "n": 3, "quote": 'say "hi"\n', "é": "ü"}
        members = "".join(logs.member(key, value) for key, value in fields.items())
        head = logs.JsonLines.head(logging.WARNING, "a\tb")
        self.lines.write(logging.WARNING, head, lambda: members)
        (line,) = self.written()
        self.assert_same_line(line, logging.WARNING, "a\tb", fields)

    def test_rpc_lines_match_their_fields(self) -> None:
        boundary = call_boundary.Boundary("my-project", rpc_logging.ALL)
        method = rpc_logging.MethodLog("/ping.v1.PingService/Send", "my-project", rpc_logging.ALL)
        cases = [
            ("ipv4:127.0.0.1:5000", (), grpc.StatusCode.OK, None),
            ("ipv6:%5B::1%5D:5000", (("traceparent", TRACEPARENT),), grpc.StatusCode.OK, None),
            ('unix:/tmp/\u00e9"s', (("x-cloud-trace-context", CLOUD_TRACE),), None, "a@b.c"),
            ("ipv4:10.0.0.1:1", (("user-agent", "x"),), grpc.StatusCode.INTERNAL, 'q"@x'),
        ]
        with mock.patch.object(logs, "_json_lines", self.lines):
            for peer, metadata, code, caller in cases:
                with self.subTest(peer=peer, code=code):
                    record = call_boundary.CallRecord(method, boundary, FakeContext(peer, metadata))
                    record.code, record.caller = code, caller
                    fields_before = method.fields(record, code or grpc.StatusCode.CANCELLED)
                    record.on_done(FakeContext(peer, metadata))
                    (line,) = self.written()
                    ended = code or grpc.StatusCode.CANCELLED
                    fields = {**fields_before, "latency": json.loads(line)["latency"]}
                    message = f"{method.name} {ended.name}"
                    self.assert_same_line(line, rpc_logging.level_of(ended), message, fields)


class LineHandlerTest(absltest.TestCase):
    """Lines made when their batch goes out: in order, whole, PIPE_BUF per write at most."""

    def setUp(self) -> None:
        super().setUp()
        self.read_end, write_end = os.pipe()
        self.addCleanup(os.close, self.read_end)
        self.addCleanup(os.close, write_end)
        self.handler = line_writer.LineHandler(write_end)
        os.set_blocking(self.read_end, False)

    def writes(self) -> list[bytes]:
        """What the handler wrote so far."""
        chunks = []
        while True:
            try:
                chunks.append(os.read(self.read_end, 1 << 20))
            except BlockingIOError:
                return chunks

    def test_lines_wait_as_parts_and_are_made_in_order_when_the_batch_goes_out(self) -> None:
        made: list[int] = []

        def make(n: int) -> str:
            made.append(n)
            return f"line {n}"

        self.handler.write(logging.INFO, "plain first")
        for n in range(self.handler.FLUSH_LINES - 2):
            self.handler.write_later(logging.INFO, make, n)
        self.assertEqual(made, [])  # nothing made while the batch fills
        self.assertEqual(self.writes(), [])
        self.handler.write_later(logging.INFO, make, 99)  # the batch is full: out it goes
        expected = ["plain first", *(f"line {n}" for n in range(self.handler.FLUSH_LINES - 2))]
        written = b"".join(self.writes()).decode().splitlines()
        self.assertEqual(written, [*expected, "line 99"])

    def test_an_error_sends_the_lines_before_it_at_once(self) -> None:
        self.handler.write_later(logging.WARNING, str, "a warning")
        self.handler.write(logging.ERROR, "an error")
        self.assertEqual(b"".join(self.writes()), b"a warning\nan error\n")

    def test_each_write_is_whole_lines_and_at_most_pipe_buf(self) -> None:
        long_line = "x" * (select.PIPE_BUF + 10)  # alone in its write: it cannot fit in one
        with mock.patch.object(logs.os, "write", wraps=os.write) as write:
            for n in range(self.handler.FLUSH_LINES - 1):
                self.handler.write_later(logging.INFO, lambda n=n: f"{n:04d}" + "y" * 600)
            self.handler.write(logging.INFO, long_line)
        chunks = [call.args[1] for call in write.call_args_list]
        self.assertGreater(len(chunks), 2)
        self.assertEqual(b"".join(chunks), b"".join(self.writes()))
        for chunk in chunks:
            self.assertTrue(chunk.endswith(b"\n"))
            self.assertTrue(len(chunk) <= select.PIPE_BUF or chunk == long_line.encode() + b"\n")
        self.assertEqual(len(b"".join(chunks).splitlines()), self.handler.FLUSH_LINES)

    def test_a_line_that_fails_to_be_made_says_so_and_the_others_go_out(self) -> None:
        self.handler.write_later(logging.INFO, str, "before")
        self.handler.write_later(logging.INFO, lambda: 1 / 0)
        self.handler.write(logging.ERROR, "after")
        before, failed, after = b"".join(self.writes()).decode().splitlines()
        self.assertEqual((before, after), ("before", "after"))
        self.assertEqual(json.loads(failed)["severity"], "ERROR")
        self.assertIn("ZeroDivisionError", json.loads(failed)["message"])

    def test_a_line_made_as_no_str_does_not_lose_its_batch(self) -> None:
        self.handler.write_later(logging.INFO, str, "before")
        self.handler.write_later(logging.INFO, lambda: None)
        self.handler.flush()
        before, failed = b"".join(self.writes()).decode().splitlines()
        self.assertEqual(before, "before")
        self.assertIn("not str", json.loads(failed)["message"])

    def test_the_flush_thread_outlives_a_line_that_fails(self) -> None:
        # A quiet server's lines go out by the flush thread alone (no 16th line, no ERROR).
        with mock.patch.object(threading, "excepthook") as thread_died:
            self.handler.write_later(logging.INFO, lambda: None)
            self.assertIn(b"not str", self.written_by_the_flush_thread())
            self.handler.write_later(logging.INFO, str, "later")
            self.assertEqual(self.written_by_the_flush_thread(), b"later\n")
        thread_died.assert_not_called()

    def written_by_the_flush_thread(self) -> bytes:
        """What the handler writes next, waiting for its timer (a few seconds at most)."""
        deadline = time.monotonic() + 10
        while not (written := b"".join(self.writes())) and time.monotonic() < deadline:
            time.sleep(self.handler.FLUSH_SECONDS)
        return written


class NonBlockingStdoutTest(absltest.TestCase):
    """A parent may set O_NONBLOCK on the stdout it shares: a full pipe then refuses a write
    (EAGAIN) or takes part of it. Every line must still arrive, whole, in order."""

    def test_every_line_arrives_whole_past_a_late_and_slow_reader(self) -> None:
        read_end, write_end = os.pipe()
        self.addCleanup(os.close, read_end)
        os.set_blocking(write_end, False)
        handler = line_writer.LineHandler(write_end)
        handler.setFormatter(logs.JsonFormatter())
        logger = logging.getLogger("nonblocking")
        logger.propagate = False
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)
        self.addCleanup(logger.removeHandler, handler)
        received: list[bytes] = []

        def read_late_and_slowly() -> None:
            time.sleep(0.3)  # the pipe (64 KiB) fills long before this
            while chunk := os.read(read_end, 4096):
                received.append(chunk)
                time.sleep(0.0005)

        reader = threading.Thread(target=read_late_and_slowly)
        reader.start()
        big = "x" * (100 * 1024)  # more than a whole pipe: always written in parts
        expected = []
        for n in range(3000):
            if n == 1000:
                logger.error("big %s", big)  # written at once, the batch before it too
                expected.append(f"big {big}")
            if n == 2000:
                logger.info("big %s", big)  # in a batch, among short lines
                expected.append(f"big {big}")
            logger.info("line %d", n)
            expected.append(f"line {n}")
        handler.flush()
        os.close(write_end)
        reader.join(timeout=60)
        self.assertFalse(reader.is_alive())
        lines = b"".join(received).decode().splitlines()
        self.assertEqual([json.loads(line)["message"] for line in lines], expected)


def _log_in_child(n: int) -> int:
    logging.getLogger("child").info("child line %d", n)
    return n * n


class ForkedChildTest(absltest.TestCase):
    """A multiprocessing child (fork start method) ends with os._exit, which flushes nothing:
    its lines must go out as they are logged."""

    def setUp(self) -> None:
        super().setUp()
        self.read_end, write_end = os.pipe()
        self.addCleanup(os.close, self.read_end)
        self.addCleanup(os.close, write_end)
        os.set_blocking(self.read_end, False)
        root = logging.getLogger()
        self.addCleanup(setattr, root, "handlers", root.handlers[:])
        self.addCleanup(root.setLevel, root.level)
        stdout = mock.Mock(fileno=lambda: write_end)
        with mock.patch.object(sys, "stdout", stdout):
            logs.configure(logs.JSON)
        self.addCleanup(setattr, logs, "_configured", None)
        self.addCleanup(setattr, logs, "_json_lines", None)
        self.fork = multiprocessing.get_context("fork")

    def messages(self) -> list[str]:
        chunks = []
        with contextlib.suppress(BlockingIOError):
            while True:
                chunks.append(os.read(self.read_end, 1 << 20))
        return [json.loads(line)["message"] for line in b"".join(chunks).splitlines()]

    def test_a_process_child_loses_no_line(self) -> None:
        child = self.fork.Process(target=_log_in_child, args=(1,))
        child.start()
        child.join(timeout=30)
        self.assertEqual(child.exitcode, 0)
        self.assertEqual(self.messages(), ["child line 1"])

    def test_pool_children_lose_no_line(self) -> None:
        with self.fork.Pool(2) as pool:
            self.assertEqual(pool.map(_log_in_child, range(4)), [0, 1, 4, 9])
        self.assertCountEqual(self.messages(), [f"child line {n}" for n in range(4)])

    def test_the_parent_still_batches(self) -> None:
        child = self.fork.Process(target=_log_in_child, args=(1,))
        child.start()
        child.join(timeout=30)
        logging.getLogger("parent").info("parent line")
        self.assertEqual(self.messages(), ["child line 1"])  # the parent's waits for its batch
        logs.flush()
        self.assertEqual(self.messages(), ["parent line"])


if __name__ == "__main__":
    absltest.main()
