"""The server's life as Cloud Run drives it: health while starting and serving, SIGTERM with a
stream in flight, a second signal, reflection, and an oversized message."""

from __future__ import annotations

import queue
import signal

import grpc
from absl.testing import absltest
from echo.v1 import echo_pb2, echo_pb2_grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc
from ping.v1 import ping_pb2
from routeguide.v1 import route_guide_pb2 as pb
from routeguide.v1 import route_guide_pb2_grpc

from tests.e2e.processes import ECHO_SERVER, PING_SERVER, ROUTE_GUIDE_SERVER, Server

SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


def check(channel: grpc.Channel, service: str = "") -> int:
    stub = health_pb2_grpc.HealthStub(channel)
    return stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=10).status


class LifecycleTest(absltest.TestCase):
    def test_health_knows_exactly_the_services_registered(self) -> None:
        for binary_var, own, other in (
            (PING_SERVER, "ping.v1.PingService", "routeguide.v1.RouteGuide"),
            (ROUTE_GUIDE_SERVER, "routeguide.v1.RouteGuide", "ping.v1.PingService"),
        ):
            server = Server(binary_var=binary_var)
            with self.subTest(own), server, grpc.insecure_channel(server.address) as channel:
                for service in ("", own):
                    self.assertEqual(check(channel, service), SERVING, service)
                for service in (other, "no.such.Service"):
                    with self.assertRaises(grpc.RpcError) as caught:
                        check(channel, service)
                    self.assertEqual(caught.exception.code(), grpc.StatusCode.NOT_FOUND)

    def test_sigterm_drains_stream_in_flight_then_exits_zero(self) -> None:
        server = Server("--grace_seconds=8", binary_var=ROUTE_GUIDE_SERVER)
        with server, grpc.insecure_channel(server.address) as channel:
            watch = health_pb2_grpc.HealthStub(channel).Watch(
                health_pb2.HealthCheckRequest(service=""), timeout=30
            )
            self.assertEqual(next(watch).status, SERVING)

            # A bidirectional stream, open across the SIGTERM: notes go in one at a time.
            notes: queue.Queue[pb.RouteNote | None] = queue.Queue()
            chat = route_guide_pb2_grpc.RouteGuideStub(channel).RouteChat(
                iter(notes.get, None), timeout=30
            )
            here = pb.Point(latitude=5, longitude=5)
            notes.put(pb.RouteNote(location=here, message="before"))
            notes.put(pb.RouteNote(location=here, message="still before"))
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
            notes.put(pb.RouteNote(location=here, message="after"))
            notes.put(None)
            self.assertEqual([n.message for n in chat], ["before", "still before"])
            self.assertEqual(chat.code(), grpc.StatusCode.OK)
            self.assertEqual(server.wait(), 0)

    def test_second_signal_exits_at_once(self) -> None:
        server = Server("--grace_seconds=60", binary_var=ROUTE_GUIDE_SERVER)
        with server, grpc.insecure_channel(server.address) as channel:
            # A stream that stays open keeps the first SIGTERM's drain waiting.
            notes: queue.Queue[pb.RouteNote | None] = queue.Queue()
            chat = route_guide_pb2_grpc.RouteGuideStub(channel).RouteChat(
                iter(notes.get, None), timeout=60
            )
            for message in ("open", "again"):
                notes.put(pb.RouteNote(location=pb.Point(latitude=1), message=message))
            self.assertEqual(next(chat).message, "open")  # the server is inside the call

            server.signal(signal.SIGTERM)
            server.wait_for_log(lambda entry: entry["message"].startswith("shutting down"))
            server.signal(signal.SIGINT)
            self.assertEqual(server.wait(timeout=10), 128 + signal.SIGINT)
            notes.put(None)

    def test_reflection_lists_exactly_the_services_registered(self) -> None:
        for binary_var, own in (
            (PING_SERVER, "ping.v1.PingService"),
            (ROUTE_GUIDE_SERVER, "routeguide.v1.RouteGuide"),
        ):
            server = Server(binary_var=binary_var)
            with self.subTest(own), server, grpc.insecure_channel(server.address) as channel:
                stub = reflection_pb2_grpc.ServerReflectionStub(channel)
                request = reflection_pb2.ServerReflectionRequest(list_services="")
                response = next(stub.ServerReflectionInfo(iter([request]), timeout=10))
                names = {s.name for s in response.list_services_response.service}
            self.assertEqual(
                {own, "grpc.health.v1.Health", "grpc.reflection.v1alpha.ServerReflection"}, names
            )

    def test_reflection_can_be_turned_off(self) -> None:
        with (
            Server("--reflection=false", binary_var=ECHO_SERVER) as server,
            grpc.insecure_channel(server.address) as ch,
        ):
            stub = reflection_pb2_grpc.ServerReflectionStub(ch)
            request = reflection_pb2.ServerReflectionRequest(list_services="")
            with self.assertRaises(grpc.RpcError) as caught:
                next(stub.ServerReflectionInfo(iter([request]), timeout=10))
        self.assertEqual(caught.exception.code(), grpc.StatusCode.UNIMPLEMENTED)

    def test_oversized_message_is_resource_exhausted_and_server_keeps_serving(self) -> None:
        server = Server("--max_receive_message_mib=1", binary_var=ECHO_SERVER)
        with server, grpc.insecure_channel(server.address) as channel:
            stub = echo_pb2_grpc.EchoServiceStub(channel)

            def echo(message: str) -> str:
                request = echo_pb2.EchoRequest(pong=ping_pb2.Pong(message=message))
                return stub.Echo(request, timeout=10).message

            with self.assertRaises(grpc.RpcError) as caught:
                echo("x" * (2 * 1024 * 1024))
            self.assertEqual(caught.exception.code(), grpc.StatusCode.RESOURCE_EXHAUSTED)
            self.assertEqual(echo("ok"), "ok")


if __name__ == "__main__":
    absltest.main()
