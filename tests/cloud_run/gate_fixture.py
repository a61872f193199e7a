"""What the front end's gate tests share, with no root and no runc: the real front end
(tools/cloud_run/front_end.py) on a loopback port, private and public, routing to a gRPC server
on another that answers each call with the metadata it received (and counts, echoes or repeats
messages), ID tokens signed by the test's own key, and helpers for gRPC and bare HTTP/2
clients (raw_h2.py) and for front ends to bare instances (bare_instances.py).
"""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator
from concurrent import futures

import grpc
import h2.connection
import h2.events
from absl.testing import absltest
from google.auth import crypt, jwt

from tests.cloud_run.bare_instances import (
    BareInstance,
)
from tests.cloud_run.front_end_fixture import start_front_end
from tests.cloud_run.raw_h2 import RawClient
from tools.cloud_run.front_end import FrontEnd
from tools.cloud_run.invoker_check import Access
from tools.cloud_run.request_gate import (
    DATA,
    END_STREAM,
    HEADERS,
    WINDOW_UPDATE,
)
from tools.cloud_run.tokens import TokenIssuer

HOST = "echo.kit-local.localhost"
TAG_HOST = "candidate---echo.kit-local.localhost"
METHOD = "/kit.test.Echo/Metadata"
# One gRPC message, empty: a unary call's whole request body.
EMPTY_MESSAGE = b"\x00\x00\x00\x00\x00"
STREAM_CLOSED = 0x5
STREAM_METHOD = "/kit.test.Echo/Count"
ECHO_METHOD = "/kit.test.Echo/Echo"
REPEAT_METHOD = "/kit.test.Echo/Repeat"


def _metadata_reply(request: bytes, context: grpc.ServicerContext) -> bytes:
    return json.dumps(
        [[k, v if isinstance(v, str) else v.hex()] for k, v in context.invocation_metadata()]
    ).encode()


def _count(requests: Iterator[bytes], context: grpc.ServicerContext) -> bytes:
    return str(sum(len(r) for r in requests)).encode()


def _echo(requests: Iterator[bytes], context: grpc.ServicerContext) -> Iterator[bytes]:
    yield from requests


def _repeat(request: bytes, context: grpc.ServicerContext) -> Iterator[bytes]:
    for index in range(int(request)):
        yield str(index).encode()


def start_instance() -> tuple[grpc.Server, int]:
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    handlers = {
        "Metadata": grpc.unary_unary_rpc_method_handler(_metadata_reply),
        "Count": grpc.stream_unary_rpc_method_handler(_count),
        "Echo": grpc.stream_stream_rpc_method_handler(_echo),
        "Repeat": grpc.unary_stream_rpc_method_handler(_repeat),
    }
    server.add_generic_rpc_handlers(
        [grpc.method_handlers_generic_handler("kit.test.Echo", handlers)]
    )
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    return server, port


class GateTestCase(absltest.TestCase):
    @classmethod
    def setUpClass(cls) -> None:
        cls.instance, instance_port = start_instance()
        cls.issuer = TokenIssuer("http://127.0.0.1:1/token")
        cls.other_issuer = TokenIssuer("http://127.0.0.1:1/token")
        ports = {HOST: instance_port, TAG_HOST: instance_port}
        private = Access(False, ("https://custom.example",))
        cls.private, cls.private_output = start_front_end(
            ports, private, cls.issuer.verify_id_token
        )
        cls.public, _ = start_front_end(ports, Access(True), cls.issuer.verify_id_token)

    @classmethod
    def tearDownClass(cls) -> None:
        cls.instance.stop(None)

    def url(self, front_end: FrontEnd, host: str = HOST) -> str:
        return f"http://{host}:{front_end.port}"

    def channel(self, front_end: FrontEnd, host: str = HOST) -> grpc.Channel:
        options = [
            ("grpc.default_authority", f"{host}:{front_end.port}"),
            ("grpc.use_local_subchannel_pool", 1),
        ]
        channel = grpc.insecure_channel(f"127.0.0.1:{front_end.port}", options)
        self.addCleanup(channel.close)
        return channel

    def call(self, channel: grpc.Channel, metadata: list[tuple[str, str | bytes]]) -> dict:
        """The instance's view of the call's metadata, by key (the last value of each)."""
        reply = channel.unary_unary(METHOD)(b"", metadata=metadata, timeout=10)
        return {k: v for k, v in json.loads(reply)}

    def token(self, audience: str, issuer: TokenIssuer | None = None) -> str:
        return (issuer or self.issuer).id_token(audience, "caller@example.com")

    def signed(self, **claims: object) -> str:
        """A token signed by the local Cloud Run's own key, with `claims` over good ones."""
        now = int(time.time())
        payload = {
            "iss": "https://accounts.google.com",
            "email": "caller@example.com",
            "iat": now,
            "exp": now + 3600,
        } | claims
        signer = crypt.RSASigner.from_service_account_info(self.issuer.key_document())
        return jwt.encode(signer, payload).decode()

    def assert_refused(
        self, channel: grpc.Channel, metadata: list, code: grpc.StatusCode, status: int
    ) -> None:
        with self.assertRaises(grpc.RpcError) as caught:
            self.call(channel, metadata)
        self.assertEqual(caught.exception.code(), code, caught.exception.details())
        self.assertIn(str(status), caught.exception.details())

    def request_headers(self, front_end: FrontEnd) -> list[tuple[bytes, bytes]]:
        return [
            (b":method", b"POST"),
            (b":scheme", b"http"),
            (b":path", METHOD.encode()),
            (b":authority", f"{HOST}:{front_end.port}".encode()),
            (b"content-type", b"application/grpc"),
            (b"te", b"trailers"),
        ]

    def raw_status(self, front_end: FrontEnd, headers: list[tuple[bytes, bytes]]) -> int:
        """The :status a raw HTTP/2 client gets for one request with `headers` (a gRPC client
        refuses to send bytes that are not ASCII)."""
        with socket.create_connection(("127.0.0.1", front_end.port), timeout=10) as sock:
            connection = h2.connection.H2Connection()
            connection.initiate_connection()
            connection.send_headers(1, self.request_headers(front_end) + headers, end_stream=True)
            sock.sendall(connection.data_to_send())
            while True:
                data = sock.recv(65536)
                if not data:
                    raise AssertionError("the front end closed the connection with no answer")
                for event in connection.receive_data(data):
                    if isinstance(event, h2.events.ResponseReceived):
                        return int(dict(event.headers)[b":status"])
                sock.sendall(connection.data_to_send())

    def raw_client(self) -> RawClient:
        client = RawClient(self.private.port)
        self.addCleanup(client.close)
        return client

    def raw_client_to(
        self, instance: BareInstance
    ) -> tuple[FrontEnd, RawClient, list[tuple[bytes, bytes]]]:
        """A front end to `instance` (private), a bare client connected to it that has sent a
        good request on stream 1, and that request's token header."""
        front_end, _ = start_front_end(
            {HOST: instance.port}, Access(False), self.issuer.verify_id_token
        )
        good = [(b"authorization", f"Bearer {self.token(self.url(front_end))}".encode())]
        client = RawClient(front_end.port)
        self.addCleanup(client.close)
        client.request(1, self.request_headers(front_end) + good, end=True)
        return front_end, client, good

    def assert_answered(self, client: RawClient, stream_id: int, status: int) -> None:
        """`stream_id`'s answer is `status` and its body, and the stream ends there."""
        kind, _, headers = client.next_on(stream_id)
        self.assertEqual((kind, headers[b":status"]), (HEADERS, str(status).encode()))  # type: ignore[index]
        kind, flags, _ = client.next_on(stream_id)
        self.assertEqual((kind, flags & END_STREAM), (DATA, END_STREAM))

    def assert_still_answers(self, client: RawClient, stream_id: int) -> None:
        good = [(b"authorization", f"Bearer {self.token(self.url(self.private))}".encode())]
        client.request(stream_id, self.request_headers(self.private) + good, end=False)
        client.send(DATA, END_STREAM, stream_id, EMPTY_MESSAGE)
        kind, _, headers = client.next_on(stream_id)
        while kind == WINDOW_UPDATE:  # the instance's, for the request's body
            kind, _, headers = client.next_on(stream_id)
        self.assertEqual(kind, HEADERS, headers)
        self.assertEqual(headers[b":status"], b"200")  # type: ignore[index]
