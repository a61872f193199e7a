"""The ping server binary and the client's `ping`, over a real socket: what `bazel run` users
get. The runtime's own serving (both loopbacks, health, reflection) is tests/e2e's."""

from __future__ import annotations

import datetime

from absl.testing import absltest
from google.protobuf import text_format
from ping.v1 import ping_pb2, ping_pb2_grpc

from python.channels import channels
from tests.e2e.processes import PING_SERVER, Server, run


def utc_now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def send(channel: object, message: str) -> ping_pb2.Response:
    return ping_pb2_grpc.PingServiceStub(channel).Send(
        ping_pb2.Request(message=message), timeout=10
    )


class PingEndToEndTest(absltest.TestCase):
    def test_client_binary_gets_pong(self) -> None:
        with Server(binary_var=PING_SERVER) as server:
            before = utc_now()
            result = run(
                "CLIENT_BIN", f"--server={server.address}", "--insecure", "ping", "--message=hello"
            )
            after = utc_now()
            self.assertEqual(result.returncode, 0, result.stderr)
            response = text_format.Parse(result.stdout, ping_pb2.Response())
            self.assertEqual(response.pong.message, "hello")
            self.assertEqual(response.pong.index, 1)
            received = response.pong.received_on.ToDatetime(datetime.UTC)
            self.assertTrue(before <= received <= after, f"{before} <= {received} <= {after}")
            server.stop()  # fails unless the exit status is 0

    def test_index_counts_calls_on_one_server(self) -> None:
        with Server(binary_var=PING_SERVER) as server:
            connection = channels.Connection(server.address, insecure=True)
            with channels.open_channel(connection) as channel:
                indexes = [send(channel, f"call {i}").pong.index for i in range(5)]
                self.assertEqual(indexes, [1, 2, 3, 4, 5])
                self.assertEqual(send(channel, "last").pong.message, "last")


if __name__ == "__main__":
    absltest.main()
