"""RouteGuide's own bounds, against its real server: RecordRoute's and RouteChat's per-method
stream limits (RESOURCE_EXHAUSTED, with a message that says which, in the call's log line too),
and RouteChat's history, bounded per point and overall, so that its replies grow with what a
client sends, not with its square. The server-wide limits are the kit's
(tests/adversarial/stream_limits_test.py)."""

from __future__ import annotations

import os
from collections.abc import Iterator

import grpc
from absl.testing import absltest
from routeguide.v1 import route_guide_pb2 as pb
from routeguide.v1 import route_guide_pb2_grpc

from python.services.route_guide import route_guide_servicer as sample
from python.testing import serving

METHOD = "/routeguide.v1.RouteGuide/"
HERE = pb.Point(latitude=1, longitude=1)
MIB = 1024 * 1024
CALL_TIMEOUT_SECONDS = 60


def notes_at(point: pb.Point, count: int, size: int = 0) -> Iterator[pb.RouteNote]:
    for index in range(count):
        yield pb.RouteNote(location=point, message=f"{index:08d}".ljust(size, "x"))


def replies_expected(count: int, kept: int) -> int:
    """Replies to `count` notes at one point when the history keeps the last `kept` there."""
    return sum(min(earlier, kept) for earlier in range(count))


class RouteGuideLimitsTest(absltest.TestCase):
    # One server for every case: a limit ends a call, not the server, and the history is per
    # call (RouteChat keeps each stream's notes apart).
    @classmethod
    def setUpClass(cls) -> None:
        super().setUpClass()
        cls.server = cls.enterClassContext(serving.start(os.environ["SERVER"]))
        cls.stub = route_guide_pb2_grpc.RouteGuideStub(cls.server.channel)

    def assert_exhausted(self, call: object, method: str, message: str) -> None:
        """`call()` fails RESOURCE_EXHAUSTED with `message`, and its log line says so."""
        with self.assertRaises(grpc.RpcError) as caught:
            call()
        self.assertEqual(caught.exception.code(), grpc.StatusCode.RESOURCE_EXHAUSTED)
        self.assertIn(message, caught.exception.details())
        line = self.server.wait_for_log(
            lambda e: e.get("method") == METHOD + method and e["code"] != "OK"
        )
        self.assertEqual(line["code"], "RESOURCE_EXHAUSTED")
        self.assertEqual(line["severity"], "WARNING")

    def assert_still_answers(self, stub: route_guide_pb2_grpc.RouteGuideStub) -> None:
        self.assertEqual(stub.GetFeature(HERE, timeout=10).location, HERE)
        self.assertIsNone(self.server.process.poll())
        self.assertNotIn("Traceback", self.server.output())
        # Every line on stdout is one JSON object, and nothing went to stderr.
        self.assertLen(self.server.logs(), len(self.server.lines), self.server.output())
        self.assertEqual(self.server.stderr_lines, [])

    def test_record_route_has_its_own_message_limit(self) -> None:
        stub = self.stub
        limit = sample.RECORD_ROUTE_LIMIT.messages
        self.assert_exhausted(
            lambda: stub.RecordRoute(iter([HERE] * (limit + 1)), timeout=CALL_TIMEOUT_SECONDS),
            "RecordRoute",
            f"more than {limit} messages",
        )
        self.assert_still_answers(stub)

    def test_route_chat_has_its_own_byte_limit(self) -> None:
        stub = self.stub
        limit = sample.ROUTE_CHAT_LIMIT.bytes
        notes = notes_at(HERE, limit // MIB + 1, size=MIB)
        self.assert_exhausted(
            lambda: list(stub.RouteChat(notes, timeout=CALL_TIMEOUT_SECONDS)),
            "RouteChat",
            f"more than {limit} bytes",
        )
        self.assert_still_answers(stub)

    def test_many_notes_at_one_point_get_replies_linear_in_the_notes(self) -> None:
        """The attack: 2,000 small notes at one point got 1,999,000 replies back."""
        stub = self.stub
        count = 2000
        replies = list(stub.RouteChat(notes_at(HERE, count), timeout=CALL_TIMEOUT_SECONDS))
        kept = sample.NOTES_KEPT_PER_POINT
        self.assertLen(replies, replies_expected(count, kept))
        self.assertLessEqual(len(replies), kept * count)
        # The last note's replies: the notes just before it, oldest first.
        last = [note.message for note in replies[-kept:]]
        self.assertEqual(last, [f"{index:08d}" for index in range(count - 1 - kept, count - 1)])
        self.assert_still_answers(stub)

    def test_large_notes_are_kept_up_to_the_history_bytes(self) -> None:
        """Notes of 1 MiB: the history keeps what fits in its bytes, not every note sent."""
        stub = self.stub
        count = 12
        kept = sample.HISTORY_BYTES // (MIB + 16)  # a note is its message and a location
        self.assertLess(kept, sample.NOTES_KEPT_PER_POINT)  # the bytes, not the count, bind
        replies = list(stub.RouteChat(notes_at(HERE, count, size=MIB), timeout=60))
        self.assertLen(replies, replies_expected(count, kept))
        self.assert_still_answers(stub)

    def test_history_keeps_the_latest_notes_overall(self) -> None:
        """More points than the history keeps notes: the earliest points' notes go first."""
        stub = self.stub
        points = [pb.Point(latitude=index, longitude=index) for index in range(1, 1501)]
        first, recent = points[0], points[-1]

        def chat() -> Iterator[pb.RouteNote]:
            for point in points:
                yield pb.RouteNote(location=point, message="once")
            yield pb.RouteNote(location=first, message="again")
            yield pb.RouteNote(location=recent, message="again")

        self.assertLess(sample.HISTORY_NOTES, len(points))
        replies = list(stub.RouteChat(chat(), timeout=CALL_TIMEOUT_SECONDS))
        self.assertEqual([(note.location, note.message) for note in replies], [(recent, "once")])
        self.assert_still_answers(stub)


if __name__ == "__main__":
    absltest.main()
