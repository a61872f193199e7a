"""A client's deadline and a client's cancel reach the server as the same frame (RST_STREAM
CANCEL), yet the log line must say which one the client saw, on a loaded machine too. Real
clients end streams by their deadline and by cancel while a busy loop holds a core; raw HTTP/2
plays clients whose request reached the server late, which is how a loaded client looks from
the server, and pins the rule where nothing on the wire tells (docs/deadlines-and-flakes.md)."""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterator

import grpc
from absl.testing import absltest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from kittest.v1 import test_service_pb2 as pb
from kittest.v1 import test_service_pb2_grpc

from tests.adversarial.raw_http2 import Connection, grpc_frame
from tests.e2e.cpu_hog import cpu_hog
from tests.e2e.processes import KITTEST_SERVER, Server

PROJECT = "kit-test"
WATCH = "/grpc.health.v1.Health/Watch"
TRACE_FIELD = "logging.googleapis.com/trace"
# Each case's deadline, in seconds: long enough for a call to be open on a loaded machine.
DEADLINE_SECONDS = 1.0


def notes(count: int, every: float) -> Iterator[pb.BidiRequest]:
    for index in range(count):
        yield pb.BidiRequest(message=str(index))
        time.sleep(every)


def traced() -> tuple[str, tuple[str, str]]:
    """A new trace id, and the header that sends it: the id names the call's log line."""
    trace_id = secrets.token_hex(16)
    return trace_id, ("x-cloud-trace-context", f"{trace_id}/1;o=1")


class DeadlinesTest(absltest.TestCase):
    # One server for every case: each names its calls by trace id, and none stops the server.
    @classmethod
    def setUpClass(cls) -> None:
        super().setUpClass()
        cls.server = cls.enterClassContext(
            Server(f"--project={PROJECT}", binary_var=KITTEST_SERVER)
        )
        cls.channel = cls.enterClassContext(grpc.insecure_channel(cls.server.address))
        cls.health = health_pb2_grpc.HealthStub(cls.channel)

    def setUp(self) -> None:
        super().setUp()
        self.enterContext(cpu_hog())

    def logged_code(self, trace_id: str) -> str:
        name = f"projects/{PROJECT}/traces/{trace_id}"
        return self.server.wait_for_log(lambda entry: entry.get(TRACE_FIELD) == name)["code"]

    def assert_still_answers(self) -> None:
        status = self.health.Check(health_pb2.HealthCheckRequest(), timeout=10).status
        self.assertEqual(status, health_pb2.HealthCheckResponse.SERVING)
        self.assertEqual(self.server.non_json_lines(), [])

    def test_streams_ended_by_the_clients_deadline_under_load(self) -> None:
        chat = test_service_pb2_grpc.TestServiceStub(self.channel).Bidi
        calls = {
            "server stream": lambda header: list(
                self.health.Watch(
                    health_pb2.HealthCheckRequest(), timeout=DEADLINE_SECONDS, metadata=[header]
                )
            ),
            "bidirectional": lambda header: list(
                chat(notes(1000, 0.02), timeout=DEADLINE_SECONDS, metadata=[header])
            ),
        }
        for kind, call in calls.items():
            for _ in range(3):
                trace_id, header = traced()
                with self.assertRaises(grpc.RpcError) as caught:
                    call(header)
                self.assertEqual(caught.exception.code(), grpc.StatusCode.DEADLINE_EXCEEDED, kind)
                self.assertEqual(self.logged_code(trace_id), "DEADLINE_EXCEEDED", kind)
        self.assert_still_answers()

    def test_streams_cancelled_by_the_client_under_load(self) -> None:
        for timeout in (10.0, None):  # far from a deadline, and without one
            trace_id, header = traced()
            call = self.health.Watch(
                health_pb2.HealthCheckRequest(), timeout=timeout, metadata=[header]
            )
            next(call)  # the stream is open
            call.cancel()
            self.assertEqual(self.logged_code(trace_id), "CANCELLED", timeout)
        self.assert_still_answers()

    def test_late_requests_and_the_rule_where_the_wire_cannot_tell(self) -> None:
        # (grpc-timeout, seconds from the request to its cancel, the code logged). A client's
        # deadline cancels its call that long after it wrote grpc-timeout; the server's copy
        # starts when the request arrives, so a request that arrived late sees the cancel early.
        cases = [
            ("2S", 0.4, "CANCELLED"),  # in the first half of the call's time: a cancel
            (None, 0.7, "CANCELLED"),  # no deadline: always a cancel
            ("2S", 1.5, "DEADLINE_EXCEEDED"),  # a request 0.5 s late (10x the old 50 ms rule)
            ("2S", 1.8, "DEADLINE_EXCEEDED"),  # a request 0.2 s late
            ("4S", 2.5, "CANCELLED"),  # second half, but more than 1 s before its end
        ]
        with Connection(self.server.port) as connection:
            started = time.monotonic()
            streams, trace_ids = [], []
            for timeout, _, _ in cases:
                trace_id, header = traced()
                deadline = [("grpc-timeout", timeout)] if timeout else []
                streams.append(connection.start(WATCH, header, *deadline))
                trace_ids.append(trace_id)
                connection.send(streams[-1], grpc_frame(b""))
            for stream in streams:  # each handler runs: its stream answered SERVING
                response = connection.responses[stream]
                connection.read_until(lambda response=response: bool(response.data))
            for (_, cancel_at, _), stream in zip(cases, streams, strict=True):
                time.sleep(max(0.0, started + cancel_at - time.monotonic()))
                connection.reset(stream)
        logged = [self.logged_code(trace_id) for trace_id in trace_ids]
        self.assertEqual(logged, [code for _, _, code in cases])
        self.assert_still_answers()


if __name__ == "__main__":
    absltest.main()
