"""SendUpstream: one server process relaying to another, over real sockets.

What the caller gets when the upstream fails is checked against a real server in `verify` mode
(which refuses the relay's hop) and against an upstream in this test that answers any status
asked for and counts the attempts that reach it.
"""

from __future__ import annotations

import contextlib
import json
import threading
from collections.abc import Iterator
from concurrent import futures

import grpc
from absl.testing import absltest
from grpc import StatusCode
from grpc_health.v1 import health_pb2, health_pb2_grpc
from ping.v1 import ping_pb2, ping_pb2_grpc

from python.channels import channels
from tests.e2e.processes import PING_SERVER, Server, run

# What the relay's caller must get for each status of the upstream: UNAVAILABLE when another
# attempt may succeed, its own DEADLINE_EXCEEDED, INTERNAL for anything the caller cannot fix.
EXPECTED = {code: StatusCode.INTERNAL for code in StatusCode if code is not StatusCode.OK} | {
    StatusCode.UNAVAILABLE: StatusCode.UNAVAILABLE,
    StatusCode.CANCELLED: StatusCode.UNAVAILABLE,
    StatusCode.RESOURCE_EXHAUSTED: StatusCode.UNAVAILABLE,
    StatusCode.ABORTED: StatusCode.UNAVAILABLE,
    StatusCode.DEADLINE_EXCEEDED: StatusCode.DEADLINE_EXCEEDED,
}
CLIENT_ATTEMPTS = json.loads(channels.RETRY_SERVICE_CONFIG)["methodConfig"][0]["retryPolicy"][
    "maxAttempts"
]


def send_upstream(address: str, message: str) -> ping_pb2.Response:
    with grpc.insecure_channel(address) as channel:
        stub = ping_pb2_grpc.PingServiceStub(channel)
        return stub.SendUpstream(ping_pb2.Request(message=message), timeout=10)


class FailingUpstream(ping_pb2_grpc.PingServiceServicer):
    """Answers Send with the status named by the message (echoes any other), counting calls."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.attempts: dict[str, int] = {}

    def Send(self, request: ping_pb2.Request, context: grpc.ServicerContext) -> ping_pb2.Response:
        with self._lock:
            self.attempts[request.message] = self.attempts.get(request.message, 0) + 1
        if request.message in StatusCode.__members__:
            context.abort(StatusCode[request.message], f"told to answer {request.message}")
        return ping_pb2.Response(pong=ping_pb2.Pong(message=request.message))


@contextlib.contextmanager
def failing_upstream() -> Iterator[tuple[str, FailingUpstream]]:
    """A FailingUpstream on a port of its own: its address, and the servicer to read counts."""
    servicer = FailingUpstream()
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    ping_pb2_grpc.add_PingServiceServicer_to_server(servicer, server)
    port = server.add_insecure_port("[::]:0")
    server.start()
    try:
        yield f"localhost:{port}", servicer
    finally:
        server.stop(None)


class RelayEndToEndTest(absltest.TestCase):
    def test_relays_to_upstream_and_marks_message(self) -> None:
        with Server(binary_var=PING_SERVER) as upstream:
            with Server(
                f"--upstream={upstream.address}", "--upstream_insecure", binary_var=PING_SERVER
            ) as relay:
                first = send_upstream(relay.address, "hi")
                second = send_upstream(relay.address, "again")
            self.assertEqual(first.pong.message, "hi (relayed)")
            self.assertEqual(second.pong.message, "again (relayed)")
            # The upstream answered: its Send count, not the relay's (which has none).
            self.assertEqual([first.pong.index, second.pong.index], [1, 2])
            upstream.wait_for_log(lambda e: e.get("method") == "/ping.v1.PingService/Send")

    def test_upstream_from_environment(self) -> None:
        with Server(binary_var=PING_SERVER) as upstream:
            env = {"GRPC_PING_HOST": upstream.address, "GRPC_PING_INSECURE": "true"}
            with Server(env=env, binary_var=PING_SERVER) as relay:
                self.assertEqual(send_upstream(relay.address, "x").pong.message, "x (relayed)")

    def test_upstream_down_is_unavailable(self) -> None:
        upstream = Server(binary_var=PING_SERVER)
        address = upstream.address
        upstream.stop()
        relay = Server(f"--upstream={address}", "--upstream_insecure", binary_var=PING_SERVER)
        with relay, self.assertRaises(grpc.RpcError) as caught:
            send_upstream(relay.address, "x")
        self.assertEqual(caught.exception.code(), StatusCode.UNAVAILABLE)
        self.assertIn(f"upstream {address} answered UNAVAILABLE", caught.exception.details())

    def test_upstream_refusing_the_relay_is_not_the_callers_auth_failure(self) -> None:
        # The relay's hop is plaintext with no token; the upstream verifies tokens.
        with Server(
            "--auth_mode=verify", "--audiences=https://upstream.example", binary_var=PING_SERVER
        ) as upstream:
            with Server(
                f"--upstream={upstream.address}", "--upstream_insecure", binary_var=PING_SERVER
            ) as relay:
                # Ping's client, on the kit's channel and its retries: INTERNAL is not retried.
                result = run("CLIENT_BIN", f"--server={relay.address}", "--insecure", "relay")
                self.assertEqual(result.returncode, 1, result.stderr)
                self.assertRegex(
                    result.stderr,
                    rf"^client: INTERNAL: upstream {upstream.address} answered UNAUTHENTICATED: ",
                )
                result = run("CLIENT_BIN", f"--server={relay.address}", "--insecure", "ping")
                self.assertEqual(result.returncode, 0, result.stderr)
            # Health is open and logged after the refused Send ended: once its line is there,
            # the line of every earlier attempt is too.
            with grpc.insecure_channel(upstream.address) as channel:
                health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest())
            upstream.wait_for_log(lambda e: e.get("method") == "/grpc.health.v1.Health/Check")
            sends = [e for e in upstream.logs() if e.get("method") == "/ping.v1.PingService/Send"]
            self.assertEqual([e.get("code") for e in sends], ["UNAUTHENTICATED"])

    def test_upstream_statuses_map_for_the_caller(self) -> None:
        with (
            failing_upstream() as (address, upstream),
            Server(f"--upstream={address}", "--upstream_insecure", binary_var=PING_SERVER) as relay,
        ):
            for code, expected in EXPECTED.items():
                with self.subTest(code.name), self.assertRaises(grpc.RpcError) as caught:
                    send_upstream(relay.address, code.name)
                self.assertEqual(caught.exception.code(), expected, code)
                self.assertIn(
                    f"upstream {address} answered {code.name}: told to answer {code.name}",
                    caught.exception.details(),
                )
            # One attempt each from a caller without retries, and the relay still relays.
            self.assertEqual(upstream.attempts, dict.fromkeys((c.name for c in EXPECTED), 1))
            self.assertEqual(send_upstream(relay.address, "ok").pong.message, "ok (relayed)")

    def test_attempts_are_bounded_by_the_callers_retries(self) -> None:
        # Ping's client (the kit's channel) retries UNAVAILABLE; the relay must not multiply that.
        with (
            failing_upstream() as (address, upstream),
            Server(f"--upstream={address}", "--upstream_insecure", binary_var=PING_SERVER) as relay,
        ):
            result = run(
                "CLIENT_BIN",
                f"--server={relay.address}",
                "--insecure",
                "relay",
                "--message=UNAVAILABLE",
            )
            self.assertEqual(result.returncode, 1, result.stderr)
            self.assertEqual(upstream.attempts, {"UNAVAILABLE": CLIENT_ATTEMPTS})
            self.assertIn(f"client: UNAVAILABLE: upstream {address} answered", result.stderr)


if __name__ == "__main__":
    absltest.main()
