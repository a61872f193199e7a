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
from kittest.v1 import test_service_pb2 as pb
from kittest.v1 import test_service_pb2_grpc

from tests.e2e.fake_google import FakeGoogle
from tests.e2e.processes import KITTEST_SERVER, Server

ALLOWED = "caller@kit-test.iam.gserviceaccount.com"
METHOD = "/kittest.v1.TestService/"
# A server stream of about 13 KiB, all sent at once: the size of the route guide's whole map,
# which once ended OK before a cancel arrived (SLOW_READER).
LONG_STREAM = pb.ServerStreamRequest(count=50, reply_bytes=256)
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


def slow(
    count: int, every: float, stop: threading.Event | None = None
) -> Iterator[pb.ClientStreamRequest]:
    for _ in range(count):
        if stop is not None and stop.is_set():
            return
        yield pb.ClientStreamRequest(message="here")
        if stop is None:
            time.sleep(every)
        elif stop.wait(every):
            return


def notes(count: int, every: float) -> Iterator[pb.BidiRequest]:
    for index in range(count):
        yield pb.BidiRequest(message=str(index))
        time.sleep(every)


class StreamsTest(absltest.TestCase):
    rpc_logs = "all"

    # One server for every case: surviving them all is the point, and each case counts only
    # the log lines written after it began (`codes`).
    @classmethod
    def setUpClass(cls) -> None:
        super().setUpClass()
        cls.server = cls.enterClassContext(
            Server(
                "--auth_mode=cloud-run",
                f"--allowed_invokers={ALLOWED}",
                f"--rpc_logs={cls.rpc_logs}",
                binary_var=KITTEST_SERVER,
            )
        )
        cls.channel = cls.enterClassContext(grpc.insecure_channel(cls.server.address))
        cls.stub = test_service_pb2_grpc.TestServiceStub(cls.channel)
        cls.metadata = [("x-serverless-authorization", f"Bearer {forwarded_token(ALLOWED)}")]

    def setUp(self) -> None:
        super().setUp()
        self.logged_before = len(self.server.logs())

    def codes(self, method: str, count: int) -> list[str]:
        """The codes of `method`'s log lines since this case began, which must be exactly
        `count`."""

        def of_method(entry: dict) -> bool:
            return entry.get("method") == METHOD + method

        before = len([e for e in self.server.logs()[: self.logged_before] if of_method(e)])
        lines = self.server.wait_for_logs(of_method, before + count)[before:]
        for line in lines:
            self.assertEqual(line["caller"], ALLOWED)  # through the auth wrapper

        # Lines go out in order: once a later call's line is out, any second line would be too.
        def denied(entry: dict) -> bool:
            return entry.get("code") == "UNAUTHENTICATED"

        earlier = len([e for e in self.server.logs() if denied(e)])
        with self.assertRaises(grpc.RpcError):
            self.stub.Unary(
                pb.UnaryRequest(), metadata=[("x-serverless-authorization", "x")], timeout=10
            )
        self.server.wait_for_logs(denied, earlier + 1)
        logged = [e for e in self.server.logs() if of_method(e)]
        self.assertLen(logged, before + count)
        return [line["code"] for line in lines]

    def assert_still_answers(self) -> None:
        reply = self.stub.Unary(pb.UnaryRequest(message="hi"), metadata=self.metadata, timeout=10)
        self.assertEqual(reply.message, "hi")
        self.assertIsNone(self.server.process.poll())
        self.assertEqual(self.server.non_json_lines(), [])

    def test_cancel_server_stream_after_one_message_many_times(self) -> None:
        channel = self.enterContext(grpc.insecure_channel(self.server.address, SLOW_READER))
        stub = test_service_pb2_grpc.TestServiceStub(channel)
        for _ in range(20):
            call = stub.ServerStream(LONG_STREAM, metadata=self.metadata, timeout=10)
            next(call)
            # Time enough for the server to send the rest, were the window open to it.
            time.sleep(0.2)
            call.cancel()
            with self.assertRaises(grpc.RpcError) as caught:
                list(call)
            self.assertEqual(caught.exception.code(), grpc.StatusCode.CANCELLED)
        self.assertEqual(self.codes("ServerStream", 20), ["CANCELLED"] * 20)
        self.assert_still_answers()

    def test_cancel_client_stream_mid_way(self) -> None:
        for _ in range(5):
            stop = threading.Event()
            future = self.stub.ClientStream.future(
                slow(100, 0.02, stop), metadata=self.metadata, timeout=10
            )
            time.sleep(SERVER_SEES_IT_SECONDS)
            future.cancel()
            stop.set()
        self.assertEqual(self.codes("ClientStream", 5), ["CANCELLED"] * 5)
        self.assert_still_answers()

    def test_cancel_bidi_stream_mid_way(self) -> None:
        for _ in range(5):
            call = self.stub.Bidi(notes(1000, 0.02), metadata=self.metadata, timeout=10)
            next(call)
            call.cancel()
        self.assertEqual(self.codes("Bidi", 5), ["CANCELLED"] * 5)
        self.assert_still_answers()

    def test_deadline_mid_stream_on_each_streaming_kind(self) -> None:
        # Streams of 2 s: the deadline still cuts them mid-way, and comes late enough that the
        # server has accepted the call (SERVER_SEES_IT_SECONDS).
        timeout = 2 * SERVER_SEES_IT_SECONDS
        calls = {
            "ClientStream": lambda: self.stub.ClientStream(
                slow(100, 0.02), metadata=self.metadata, timeout=timeout
            ),
            "Bidi": lambda: list(
                self.stub.Bidi(notes(100, 0.02), metadata=self.metadata, timeout=timeout)
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
            list(self.stub.ServerStream(LONG_STREAM, timeout=10))  # no token
        self.assertEqual(caught.exception.code(), grpc.StatusCode.UNAUTHENTICATED)
        line = self.server.wait_for_log(
            lambda e: e.get("method") == METHOD + "ServerStream" and e["code"] != "CANCELLED"
        )
        self.assertEqual(line["code"], "UNAUTHENTICATED")
        self.assert_still_answers()


class ErrorsOnlyTest(StreamsTest):
    """--rpc_logs=errors: failures must still be logged (they were logged OK and hidden)."""

    rpc_logs = "errors"

    def assert_still_answers(self) -> None:
        super().assert_still_answers()
        self.assertEqual([e for e in self.server.logs() if e.get("code") == "OK"], [])


if __name__ == "__main__":
    absltest.main()
