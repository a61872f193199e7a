"""SendUpstream: one server process relaying to another, over real sockets."""

from __future__ import annotations

import grpc
from absl.testing import absltest
from ping.v1 import ping_pb2, ping_pb2_grpc

from tests.e2e.processes import Server


def send_upstream(address: str, message: str) -> ping_pb2.Response:
    with grpc.insecure_channel(address) as channel:
        stub = ping_pb2_grpc.PingServiceStub(channel)
        return stub.SendUpstream(ping_pb2.Request(message=message), timeout=10)


class RelayEndToEndTest(absltest.TestCase):
    def test_relays_to_upstream_and_marks_message(self) -> None:
        with Server() as upstream:
            with Server(f"--upstream={upstream.address}", "--upstream_insecure") as relay:
                first = send_upstream(relay.address, "hi")
                second = send_upstream(relay.address, "again")
            self.assertEqual(first.pong.message, "hi (relayed)")
            self.assertEqual(second.pong.message, "again (relayed)")
            # The upstream answered: its Send count, not the relay's (which has none).
            self.assertEqual([first.pong.index, second.pong.index], [1, 2])
            upstream.wait_for_log(lambda e: e.get("method") == "/ping.v1.PingService/Send")

    def test_upstream_from_environment(self) -> None:
        with Server() as upstream:
            env = {"GRPC_PING_HOST": upstream.address, "GRPC_PING_INSECURE": "true"}
            with Server(env=env) as relay:
                self.assertEqual(send_upstream(relay.address, "x").pong.message, "x (relayed)")

    def test_upstream_failure_keeps_status_code(self) -> None:
        upstream = Server()
        address = upstream.address
        upstream.stop()
        relay = Server(f"--upstream={address}", "--upstream_insecure")
        with relay, self.assertRaises(grpc.RpcError) as caught:
            send_upstream(relay.address, "x")
        self.assertEqual(caught.exception.code(), grpc.StatusCode.UNAVAILABLE)
        self.assertIn(f"upstream {address}", caught.exception.details())

    def test_no_upstream_configured(self) -> None:
        server = Server(env={"GRPC_PING_HOST": ""})
        with server, self.assertRaises(grpc.RpcError) as caught:
            send_upstream(server.address, "x")
        self.assertEqual(caught.exception.code(), grpc.StatusCode.FAILED_PRECONDITION)


if __name__ == "__main__":
    absltest.main()
