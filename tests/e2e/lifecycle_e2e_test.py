"""The server's life as Cloud Run drives it: health while starting and serving, SIGTERM with a
stream in flight, a second signal, reflection, an oversized message, and both loopbacks."""

from __future__ import annotations

import queue
import signal

import grpc
from absl.testing import absltest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc
from kittest.v1 import test_service_pb2 as pb
from kittest.v1 import test_service_pb2_grpc

from python.channels import channels
from tests.e2e.processes import KITTEST_SERVER, Server

OWN_SERVICE = "kittest.v1.TestService"
SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


def check(channel: grpc.Channel, service: str = "") -> int:
    stub = health_pb2_grpc.HealthStub(channel)
    return stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=10).status


class ServingTest(absltest.TestCase):
    """What one server, left running, answers about itself: no case here stops it."""

    @classmethod
    def setUpClass(cls) -> None:
        super().setUpClass()
        cls.server = cls.enterClassContext(Server(binary_var=KITTEST_SERVER))
        cls.channel = cls.enterClassContext(grpc.insecure_channel(cls.server.address))

    def test_health_knows_exactly_the_services_registered(self) -> None:
        for service in ("", OWN_SERVICE):
            self.assertEqual(check(self.channel, service), SERVING, service)
        # A service of another server of this repository, and one of nobody's.
        for service in ("echo.v1.EchoService", "no.such.Service"):
            with self.assertRaises(grpc.RpcError) as caught:
                check(self.channel, service)
            self.assertEqual(caught.exception.code(), grpc.StatusCode.NOT_FOUND)

    def test_reflection_lists_exactly_the_services_registered(self) -> None:
        stub = reflection_pb2_grpc.ServerReflectionStub(self.channel)
        request = reflection_pb2.ServerReflectionRequest(list_services="")
        response = next(stub.ServerReflectionInfo(iter([request]), timeout=10))
        names = {s.name for s in response.list_services_response.service}
        self.assertEqual(
            {OWN_SERVICE, "grpc.health.v1.Health", "grpc.reflection.v1alpha.ServerReflection"},
            names,
        )

    def test_server_listens_on_ipv4_and_ipv6_loopback(self) -> None:
        for host in ("127.0.0.1", "[::1]"):
            connection = channels.Connection(f"{host}:{self.server.port}", insecure=True)
            with channels.open_channel(connection) as channel:
                stub = test_service_pb2_grpc.TestServiceStub(channel)
                self.assertEqual(
                    stub.Unary(pb.UnaryRequest(message=host), timeout=10).message, host
                )


class LifecycleTest(absltest.TestCase):
    def test_sigterm_drains_stream_in_flight_then_exits_zero(self) -> None:
        server = Server("--grace_seconds=8", binary_var=KITTEST_SERVER)
        with server, grpc.insecure_channel(server.address) as channel:
            watch = health_pb2_grpc.HealthStub(channel).Watch(
                health_pb2.HealthCheckRequest(service=""), timeout=30
            )
            self.assertEqual(next(watch).status, SERVING)

            # A bidirectional stream, open across the SIGTERM: messages go in one at a time.
            notes: queue.Queue[pb.BidiRequest | None] = queue.Queue()
            chat = test_service_pb2_grpc.TestServiceStub(channel).Bidi(
                iter(notes.get, None), timeout=30
            )
            notes.put(pb.BidiRequest(message="before"))
            notes.put(pb.BidiRequest(message="still before"))
            self.assertEqual(next(chat).message, "before")

            server.signal(signal.SIGTERM)
            self.assertEqual(next(watch).status, NOT_SERVING)
            self.assertEqual(list(watch), [], "Watch ends after NOT_SERVING")

            # New calls are refused with UNAVAILABLE, the code a client retries elsewhere, on a
            # new connection and on the stream's own; the stream in flight still works and
            # ends OK.
            with grpc.insecure_channel(server.address) as fresh:
                for name, new_call_channel in (("new", fresh), ("stream's", channel)):
                    with self.assertRaises(grpc.RpcError, msg=name) as caught:
                        check(new_call_channel)
                    self.assertEqual(
                        caught.exception.code(),
                        grpc.StatusCode.UNAVAILABLE,
                        f"a call on the {name} connection\n{server.output()}",
                    )
            notes.put(pb.BidiRequest(message="after"))
            notes.put(None)
            self.assertEqual([n.message for n in chat], ["still before", "after"])
            self.assertEqual(chat.code(), grpc.StatusCode.OK)
            self.assertEqual(server.wait(), 0)

    def test_second_signal_exits_at_once(self) -> None:
        server = Server("--grace_seconds=60", binary_var=KITTEST_SERVER)
        with server, grpc.insecure_channel(server.address) as channel:
            # A stream that stays open keeps the first SIGTERM's drain waiting.
            notes: queue.Queue[pb.BidiRequest | None] = queue.Queue()
            chat = test_service_pb2_grpc.TestServiceStub(channel).Bidi(
                iter(notes.get, None), timeout=60
            )
            for message in ("open", "again"):
                notes.put(pb.BidiRequest(message=message))
            self.assertEqual(next(chat).message, "open")  # the server is inside the call

            server.signal(signal.SIGTERM)
            server.wait_for_log(lambda entry: entry["message"].startswith("shutting down"))
            server.signal(signal.SIGINT)
            self.assertEqual(server.wait(timeout=10), 128 + signal.SIGINT)
            notes.put(None)

    def test_reflection_can_be_turned_off(self) -> None:
        with (
            Server("--reflection=false", binary_var=KITTEST_SERVER) as server,
            grpc.insecure_channel(server.address) as ch,
        ):
            stub = reflection_pb2_grpc.ServerReflectionStub(ch)
            request = reflection_pb2.ServerReflectionRequest(list_services="")
            with self.assertRaises(grpc.RpcError) as caught:
                next(stub.ServerReflectionInfo(iter([request]), timeout=10))
        self.assertEqual(caught.exception.code(), grpc.StatusCode.UNIMPLEMENTED)

    def test_oversized_message_is_resource_exhausted_and_server_keeps_serving(self) -> None:
        server = Server("--max_receive_message_mib=1", binary_var=KITTEST_SERVER)
        with server, grpc.insecure_channel(server.address) as channel:
            stub = test_service_pb2_grpc.TestServiceStub(channel)

            def echo(message: str) -> str:
                return stub.Unary(pb.UnaryRequest(message=message), timeout=10).message

            with self.assertRaises(grpc.RpcError) as caught:
                echo("x" * (2 * 1024 * 1024))
            self.assertEqual(caught.exception.code(), grpc.StatusCode.RESOURCE_EXHAUSTED)
            self.assertEqual(echo("ok"), "ok")


if __name__ == "__main__":
    absltest.main()
