"""Clients that stop reading, cancel, or run out of time, on every kind of call, many times in
a row, through the logging and auth wrappers (cloud-run mode with an allowed invoker): the
server stays up, logs the status each client got, and answers afterwards."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import grpc
from absl.testing import absltest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from routeguide.v1 import route_guide_pb2 as pb
from routeguide.v1 import route_guide_pb2_grpc

from tests.e2e.fake_google import FakeGoogle
from tests.e2e.processes import ROUTE_GUIDE_SERVER, Server

ALLOWED = "caller@kit-test.iam.gserviceaccount.com"
METHOD = "/routeguide.v1.RouteGuide/"
HERE = pb.Point(latitude=1, longitude=1)
WHOLE_MAP = pb.Rectangle(
    lo=pb.Point(latitude=370000000, longitude=-1230000000),
    hi=pb.Point(latitude=380000000, longitude=-1215000000),
)
# How long a client waits before it cancels a call or lets its deadline end it, so that the server
# has taken the call in: gRPC's core drops a call that ends while it waits for the server's
# event loop to accept it, and such a call has no log line (docs/runtime.md). Under CI's load
# that wait once passed 0.3 s.
SERVER_SEES_IT_SECONDS = 0.4
# A client that reads slowly: its HTTP/2 window opens 1 KiB past what it has read, and never
# grows (no BDP probe). The whole map (about 13 KiB) fits gRPC's default window: a server could
# send all of it and end OK before a cancel arrived, and CI's load once let it (docs/testing.md).
SLOW_READER = [("grpc.http2.lookahead_bytes", 1024), ("grpc.http2.bdp_probe", 0)]


def forwarded_token(email: str) -> str:
    """An ID token as Cloud Run hands it on: payload intact, signature removed."""
    google = FakeGoogle()
    try:
        header, payload, _ = google.id_token("https://svc.run.app", email=email).split(".")
    finally:
        google.close()
    return f"{header}.{payload}.SIGNATURE_REMOVED_BY_GOOGLE"


def slow(points: int, every: float, stop: threading.Event | None = None) -> Iterator[pb.Point]:
    for _ in range(points):
        if stop is not None and stop.is_set():
            return
        yield HERE
        time.sleep(every)


def notes(count: int, every: float) -> Iterator[pb.RouteNote]:
    for index in range(count):
        yield pb.RouteNote(location=HERE, message=str(index))
        time.sleep(every)


class StreamsTest(absltest.TestCase):
    rpc_logs = "all"

    def setUp(self) -> None:
        super().setUp()
        self.server = self.enterContext(
            Server(
                "--auth_mode=cloud-run",
                f"--allowed_invokers={ALLOWED}",
                f"--rpc_logs={self.rpc_logs}",
                binary_var=ROUTE_GUIDE_SERVER,
            )
        )
        self.channel = self.enterContext(grpc.insecure_channel(self.server.address))
        self.stub = route_guide_pb2_grpc.RouteGuideStub(self.channel)
        self.metadata = [("x-serverless-authorization", f"Bearer {forwarded_token(ALLOWED)}")]

    def codes(self, method: str, count: int) -> list[str]:
        """The codes of `method`'s log lines, which must be exactly `count`."""
        lines = self.server.wait_for_logs(lambda e: e.get("method") == METHOD + method, count)
        for line in lines:
            self.assertEqual(line["caller"], ALLOWED)  # through the auth wrapper

        # Lines go out in order: once a later call's line is out, any second line would be too.
        def denied(entry: dict) -> bool:
            return entry.get("code") == "UNAUTHENTICATED"

        earlier = len([e for e in self.server.logs() if denied(e)])
        with self.assertRaises(grpc.RpcError):
            self.stub.GetFeature(HERE, metadata=[("x-serverless-authorization", "x")], timeout=10)
        self.server.wait_for_logs(denied, earlier + 1)
        logged = [e for e in self.server.logs() if e.get("method") == METHOD + method]
        self.assertLen(logged, count)
        return [line["code"] for line in lines]

    def assert_still_answers(self) -> None:
        feature = self.stub.GetFeature(HERE, metadata=self.metadata, timeout=10)
        self.assertEqual(feature.location, HERE)
        self.assertIsNone(self.server.process.poll())
        self.assertEqual(self.server.non_json_lines(), [])

    def test_cancel_server_stream_after_one_message_many_times(self) -> None:
        channel = self.enterContext(grpc.insecure_channel(self.server.address, SLOW_READER))
        stub = route_guide_pb2_grpc.RouteGuideStub(channel)
        for _ in range(20):
            call = stub.ListFeatures(WHOLE_MAP, metadata=self.metadata, timeout=10)
            next(call)
            # Time enough for the server to send the rest, were the window open to it.
            time.sleep(0.2)
            call.cancel()
            with self.assertRaises(grpc.RpcError) as caught:
                list(call)
            self.assertEqual(caught.exception.code(), grpc.StatusCode.CANCELLED)
        self.assertEqual(self.codes("ListFeatures", 20), ["CANCELLED"] * 20)
        self.assert_still_answers()

    def test_cancel_client_stream_mid_way(self) -> None:
        for _ in range(5):
            stop = threading.Event()
            future = self.stub.RecordRoute.future(
                slow(100, 0.02, stop), metadata=self.metadata, timeout=10
            )
            time.sleep(SERVER_SEES_IT_SECONDS)
            future.cancel()
            stop.set()
        self.assertEqual(self.codes("RecordRoute", 5), ["CANCELLED"] * 5)
        self.assert_still_answers()

    def test_cancel_bidi_stream_mid_way(self) -> None:
        for _ in range(5):
            call = self.stub.RouteChat(notes(1000, 0.02), metadata=self.metadata, timeout=10)
            next(call)
            call.cancel()
        self.assertEqual(self.codes("RouteChat", 5), ["CANCELLED"] * 5)
        self.assert_still_answers()

    def test_deadline_mid_stream_on_each_streaming_kind(self) -> None:
        # Streams of 2 s: the deadline still cuts them mid-way, and comes late enough that the
        # server has accepted the call (SERVER_SEES_IT_SECONDS).
        timeout = 2 * SERVER_SEES_IT_SECONDS
        calls = {
            "RecordRoute": lambda: self.stub.RecordRoute(
                slow(100, 0.02), metadata=self.metadata, timeout=timeout
            ),
            "RouteChat": lambda: list(
                self.stub.RouteChat(notes(100, 0.02), metadata=self.metadata, timeout=timeout)
            ),
        }
        for method, call in calls.items():
            for _ in range(3):
                with self.assertRaises(grpc.RpcError) as caught:
                    call()
                self.assertEqual(caught.exception.code(), grpc.StatusCode.DEADLINE_EXCEEDED)
            self.assertEqual(self.codes(method, 3), ["DEADLINE_EXCEEDED"] * 3)
        # A server stream that outlives its deadline: health's Watch, which the server never ends.
        health = health_pb2_grpc.HealthStub(self.channel)
        with self.assertRaises(grpc.RpcError) as caught:
            list(health.Watch(health_pb2.HealthCheckRequest(), timeout=0.3))
        self.assertEqual(caught.exception.code(), grpc.StatusCode.DEADLINE_EXCEEDED)
        watch = self.server.wait_for_log(lambda e: e.get("method", "").endswith("Health/Watch"))
        self.assertEqual(watch["code"], "DEADLINE_EXCEEDED")
        self.assert_still_answers()

    def test_denied_streams_keep_their_code(self) -> None:
        with self.assertRaises(grpc.RpcError) as caught:
            list(self.stub.ListFeatures(WHOLE_MAP, timeout=10))  # no token
        self.assertEqual(caught.exception.code(), grpc.StatusCode.UNAUTHENTICATED)
        line = self.server.wait_for_log(lambda e: e.get("code") == "UNAUTHENTICATED")
        self.assertEqual(line["method"], METHOD + "ListFeatures")
        self.assert_still_answers()


class ErrorsOnlyTest(StreamsTest):
    """--rpc_logs=errors: failures must still be logged (they were logged OK and hidden)."""

    rpc_logs = "errors"

    def assert_still_answers(self) -> None:
        super().assert_still_answers()
        self.assertEqual([e for e in self.server.logs() if e.get("code") == "OK"], [])


if __name__ == "__main__":
    absltest.main()
