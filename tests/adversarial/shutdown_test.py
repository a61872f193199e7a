"""SIGTERM with calls in flight: a call that finishes within the grace period ends OK, a
stream that outlives it is cut with UNAVAILABLE (what Cloud Run's clients retry), each is
logged with the status its client got, and every line the server writes is JSON."""

from __future__ import annotations

import queue
from collections.abc import Iterator

import grpc
from absl.testing import absltest
from routeguide.v1 import route_guide_pb2 as pb
from routeguide.v1 import route_guide_pb2_grpc

from tests.e2e.processes import ROUTE_GUIDE_SERVER, Server

HERE = pb.Point(latitude=1, longitude=1)
GRACE_SECONDS = 1.5


def held_open(notes: queue.Queue[pb.RouteNote | None]) -> Iterator[pb.RouteNote]:
    while (note := notes.get()) is not None:
        yield note


class ShutdownTest(absltest.TestCase):
    def test_calls_in_flight_at_sigterm(self) -> None:
        server = self.enterContext(
            Server(f"--grace_seconds={GRACE_SECONDS}", binary_var=ROUTE_GUIDE_SERVER)
        )
        channel = self.enterContext(grpc.insecure_channel(server.address))
        stub = route_guide_pb2_grpc.RouteGuideStub(channel)

        # A chat the client keeps open past the grace period, and one it ends within it.
        outliving: queue.Queue[pb.RouteNote | None] = queue.Queue()
        finishing: queue.Queue[pb.RouteNote | None] = queue.Queue()
        long_call = stub.RouteChat(held_open(outliving), timeout=30)
        short_call = stub.RouteChat(held_open(finishing), timeout=30)
        for notes, call in ((outliving, long_call), (finishing, short_call)):
            notes.put(pb.RouteNote(location=HERE, message="a"))
            notes.put(pb.RouteNote(location=HERE, message="b"))
            self.assertEqual(next(call).message, "a")

        server.signal()
        server.wait_for_log(lambda e: e["message"].startswith("shutting down"))
        finishing.put(None)  # the client half-closes within the grace period
        self.assertEqual(list(short_call), [])

        with self.assertRaises(grpc.RpcError) as caught:
            list(long_call)
        outliving.put(None)
        self.assertEqual(caught.exception.code(), grpc.StatusCode.UNAVAILABLE)

        self.assertEqual(server.wait(), 0)
        chats = [e for e in server.logs() if e.get("method", "").endswith("RouteChat")]
        self.assertCountEqual([e["code"] for e in chats], ["OK", "UNAVAILABLE"])
        self.assertEqual(server.logs()[-1]["message"], "stopped")
        self.assertEqual(server.non_json_lines(), [], server.output())
        self.assertEqual(server.stderr_lines, [])


if __name__ == "__main__":
    absltest.main()
