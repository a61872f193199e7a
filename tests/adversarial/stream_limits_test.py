"""Request streams that do not end, against the kit's test server: the server-wide limits
(--max_stream_messages, --max_stream_mib) end them RESOURCE_EXHAUSTED with a message that says
which, in the call's log line too, on the services' streams and the runtime's own. A sample's
own limits are its tests' (python/services/route_guide/route_guide_limits_test.py)."""

from __future__ import annotations

from collections.abc import Iterator

import grpc
from absl.testing import absltest
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc
from kittest.v1 import test_service_pb2 as pb
from kittest.v1 import test_service_pb2_grpc

from tests.e2e.processes import KITTEST_SERVER, Server, run

METHOD = "/kittest.v1.TestService/"
EXIT_USAGE = 2


def messages(count: int, size: int = 0) -> Iterator[pb.BidiRequest]:
    for index in range(count):
        yield pb.BidiRequest(message=f"{index:08d}".ljust(size, "x"))


class StreamLimitsTest(absltest.TestCase):
    def start(self, *flags: str) -> test_service_pb2_grpc.TestServiceStub:
        self.server = self.enterContext(Server(*flags, binary_var=KITTEST_SERVER))
        channel = self.enterContext(grpc.insecure_channel(self.server.address))
        return test_service_pb2_grpc.TestServiceStub(channel)

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

    def assert_still_answers(self, stub: test_service_pb2_grpc.TestServiceStub) -> None:
        self.assertEqual(stub.Unary(pb.UnaryRequest(message="hi"), timeout=10).message, "hi")
        self.assertIsNone(self.server.process.poll())
        self.assertNotIn("Traceback", self.server.output())
        self.assertEqual(self.server.non_json_lines(), [])

    def test_server_wide_message_limit_on_every_request_stream(self) -> None:
        stub = self.start("--max_stream_messages=50")
        sent = [pb.ClientStreamRequest()]
        self.assertEqual(stub.ClientStream(iter(sent * 50), timeout=10).messages, 50)
        self.assert_exhausted(
            lambda: stub.ClientStream(iter(sent * 51), timeout=10),
            "ClientStream",
            "more than 50 messages",
        )
        self.assert_exhausted(
            lambda: list(stub.Bidi(messages(51), timeout=10)), "Bidi", "more than 50 messages"
        )
        # The runtime's own streams too: reflection's.
        with grpc.insecure_channel(self.server.address) as channel:
            reflection = reflection_pb2_grpc.ServerReflectionStub(channel)
            asks = [reflection_pb2.ServerReflectionRequest(list_services="")] * 51
            with self.assertRaises(grpc.RpcError) as caught:
                list(reflection.ServerReflectionInfo(iter(asks), timeout=10))
        self.assertEqual(caught.exception.code(), grpc.StatusCode.RESOURCE_EXHAUSTED)
        self.assert_still_answers(stub)

    def test_server_wide_byte_limit(self) -> None:
        stub = self.start("--max_stream_mib=0.01")  # 10,486 bytes
        self.assert_exhausted(
            lambda: list(stub.Bidi(messages(11, size=1000), timeout=10)),
            "Bidi",
            "more than 10486 bytes",
        )
        self.assert_still_answers(stub)

    def test_limits_must_be_positive(self) -> None:
        for flag in ("--max_stream_messages=0", "--max_stream_mib=0", "--max_stream_mib=-1"):
            with self.subTest(flag=flag):
                result = run(KITTEST_SERVER, flag, env={"PORT": "0"})
                self.assertEqual(result.returncode, EXIT_USAGE, result.stderr)
                self.assertNotIn("Traceback", result.stderr)


if __name__ == "__main__":
    absltest.main()
