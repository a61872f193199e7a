"""SIGTERM with calls in flight: a call that finishes within the grace period ends OK, a
stream that outlives it is cut with UNAVAILABLE (what Cloud Run's clients retry), each is
logged with the status its client got, and every line the server writes is JSON."""

from __future__ import annotations

import queue
from collections.abc import Iterator

import grpc
from absl.testing import absltest
from kittest.v1 import test_service_pb2 as pb
from kittest.v1 import test_service_pb2_grpc

from tests.e2e.processes import KITTEST_SERVER, Server

GRACE_SECONDS = 1.5


def held_open(notes: queue.Queue[pb.BidiRequest | None]) -> Iterator[pb.BidiRequest]:
    while (note := notes.get()) is not None:
        yield note


class ShutdownTest(absltest.TestCase):
    def test_calls_in_flight_at_sigterm(self) -> None:
        server = self.enterContext(
            Server(f"--grace_seconds={GRACE_SECONDS}", binary_var=KITTEST_SERVER)
        )
        channel = self.enterContext(grpc.insecure_channel(server.address))
        stub = test_service_pb2_grpc.TestServiceStub(channel)

        # A stream the client keeps open past the grace period, and one it ends within it.
        outliving: queue.Queue[pb.BidiRequest | None] = queue.Queue()
        finishing: queue.Queue[pb.BidiRequest | None] = queue.Queue()
        long_call = stub.Bidi(held_open(outliving), timeout=30)
        short_call = stub.Bidi(held_open(finishing), timeout=30)
        for notes, call in ((outliving, long_call), (finishing, short_call)):
            notes.put(pb.BidiRequest(message="a"))
            notes.put(pb.BidiRequest(message="b"))
            self.assertEqual(next(call).message, "a")

        server.signal()
        server.wait_for_log(lambda e: e["message"].startswith("shutting down"))
        finishing.put(None)  # the client half-closes within the grace period
        self.assertEqual([reply.message for reply in short_call], ["b"])

        with self.assertRaises(grpc.RpcError) as caught:
            list(long_call)
        outliving.put(None)
        self.assertEqual(caught.exception.code(), grpc.StatusCode.UNAVAILABLE)

        self.assertEqual(server.wait(), 0)
        bidis = [e for e in server.logs() if e.get("method", "").endswith("/Bidi")]
        self.assertCountEqual([e["code"] for e in bidis], ["OK", "UNAVAILABLE"])
        self.assertEqual(server.logs()[-1]["message"], "stopped")
        self.assertEqual(server.non_json_lines(), [], server.output())
        self.assertEqual(server.stderr_lines, [])


if __name__ == "__main__":
    absltest.main()
