"""The generated Python: import paths follow proto import paths, from any Bazel package, and
messages that use well-known types and other packages' protos round-trip."""

import datetime

import grpc
from absl.testing import absltest
from echo.v1 import echo_pb2, echo_pb2_grpc
from google.protobuf import duration_pb2, timestamp_pb2
from pong.v1 import pong_pb2


class GeneratedStubsTest(absltest.TestCase):
    def test_well_known_type_round_trips(self) -> None:
        when = datetime.datetime(2026, 11, 21, 5, 37, 28, 123456, tzinfo=datetime.UTC)
        pong = pong_pb2.Pong(index=7, message="hi")
        pong.received_on.FromDatetime(when)
        parsed = pong_pb2.Pong.FromString(pong.SerializeToString())
        self.assertEqual(parsed, pong)
        self.assertIsInstance(parsed.received_on, timestamp_pb2.Timestamp)
        self.assertEqual(parsed.received_on.ToDatetime(datetime.UTC), when)

    def test_messages_from_other_packages_nest(self) -> None:
        request = echo_pb2.EchoRequest(
            pong=pong_pb2.Pong(index=1), delay=duration_pb2.Duration(seconds=2)
        )
        parsed = echo_pb2.EchoRequest.FromString(request.SerializeToString())
        self.assertEqual(parsed.pong.index, 1)
        self.assertEqual(parsed.delay.ToTimedelta(), datetime.timedelta(seconds=2))
        self.assertIs(
            echo_pb2.EchoRequest.DESCRIPTOR.fields_by_name["pong"].message_type,
            pong_pb2.Pong.DESCRIPTOR,
        )

    def test_service_stubs_and_servicers(self) -> None:
        self.assertEqual(
            [m.name for m in echo_pb2.DESCRIPTOR.services_by_name["EchoService"].methods],
            ["Echo"],
        )
        with grpc.insecure_channel("localhost:1") as channel:
            self.assertTrue(callable(echo_pb2_grpc.EchoServiceStub(channel).Echo))
        self.assertTrue(hasattr(echo_pb2_grpc, "add_EchoServiceServicer_to_server"))

    def test_comments_become_docstrings(self) -> None:
        self.assertIn("after the delay", echo_pb2_grpc.EchoServiceServicer.Echo.__doc__)

    def test_type_stubs_are_generated(self) -> None:
        pyi = pong_pb2.__file__.removesuffix(".py") + ".pyi"
        with open(pyi, encoding="utf-8") as stub:
            self.assertIn("received_on: _timestamp_pb2.Timestamp", stub.read())


if __name__ == "__main__":
    absltest.main()
