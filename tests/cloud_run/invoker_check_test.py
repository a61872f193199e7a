"""The front end's invoker check over real sockets, with no root and no runc: the real front end
(tools/cloud_run/front_end.py) on a loopback port, routing to a gRPC server on another that
answers each call with the metadata it received, and real gRPC clients.

A private service: no token is 403 (PERMISSION_DENIED to a gRPC client), a token that fails a
check 401 (UNAUTHENTICATED): signed by another key, for another audience, expired, not a JWT
(more segments too: google-auth's message for that quotes the token, never logged),
not `Bearer`, repeated, or with bytes that are not ASCII; a header name that is not a lowercase
token is 400. A good one reaches the instance with
its signature removed; `X-Serverless-Authorization` is the header checked when present, and
`Authorization` then reaches the instance untouched. Refusals and passes alternate on one
connection for many calls (the HPACK state on both sides stays in step), a refused stream's
request body is dropped, a header block larger than a frame is split, one without end drops its
connection only, one on a stream the instance does not have open (a refused stream's id used
again, an id below a refused one; a bare client, raw_h2.py) is reset and never reaches it,
a refusal waits for the end of a header block the instance has open (bare_instances.py),
the front end answers the client's PINGs (relayed after refusals, they made a gRPC instance
end the connection), the window a client gives back for refusals never reaches the instance
(bare_instances.py), a later request naming another host is checked against the URL
the connection was routed by, streaming calls (2000 messages each way) pass whole and end when
refused or cancelled, the front end's HPACK table towards an instance keeps to the size the
instance sets (bare_instances.py), and the front end logs why it refused, never a
token. A public service passes everything untouched.
"""

from __future__ import annotations

import base64
import json
import socket
import struct
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
    ClosingInstance,
    HeldHeaderBlock,
    RecordingInstance,
    SmallTableInstance,
)
from tests.cloud_run.front_end_fixture import start_front_end
from tests.cloud_run.raw_h2 import ACK, RawClient
from tools.cloud_run.front_end import FrontEnd
from tools.cloud_run.invoker_check import Access
from tools.cloud_run.request_gate import (
    CONTINUATION,
    DATA,
    END_HEADERS,
    END_STREAM,
    HEADERS,
    PING,
    RST_STREAM,
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


class InvokerCheckTest(absltest.TestCase):
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

    def test_no_token_is_403(self) -> None:
        channel = self.channel(self.private)
        self.assert_refused(channel, [], grpc.StatusCode.PERMISSION_DENIED, 403)
        self.assertIn(f"front end: {HOST}: 403 (no ID token)", self.private_output.getvalue())

    def test_a_token_for_the_service_url_passes_with_its_signature_removed(self) -> None:
        token = self.token(self.url(self.private))
        seen = self.call(self.channel(self.private), [("authorization", f"Bearer {token}")])
        header, payload, signature = seen["authorization"].removeprefix("Bearer ").split(".")
        self.assertEqual(signature, "SIGNATURE_REMOVED_BY_GOOGLE")
        self.assertEqual(f"{header}.{payload}", token.rpartition(".")[0])
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        self.assertEqual(claims["email"], "caller@example.com")

    def test_the_tag_url_and_a_custom_audience_are_audiences_too(self) -> None:
        tag = self.url(self.private, TAG_HOST)
        seen = self.call(
            self.channel(self.private, TAG_HOST), [("authorization", f"Bearer {self.token(tag)}")]
        )
        self.assertIn("SIGNATURE_REMOVED_BY_GOOGLE", seen["authorization"])
        custom = self.token("https://custom.example")
        seen = self.call(self.channel(self.private), [("authorization", f"Bearer {custom}")])
        self.assertIn("SIGNATURE_REMOVED_BY_GOOGLE", seen["authorization"])

    def test_tokens_that_fail_a_check_are_401(self) -> None:
        url = self.url(self.private)
        tag = self.url(self.private, TAG_HOST)
        now = int(time.time())
        header, payload, _ = self.token(url).split(".")
        bad = {
            "expired": f"Bearer {self.signed(aud=url, iat=now - 7200, exp=now - 3600)}",
            "another issuer": f"Bearer {self.signed(aud=url, iss='https://evil.example')}",
            "another key": f"Bearer {self.token(url, self.other_issuer)}",
            "another audience": f"Bearer {self.token('http://other.kit-local.localhost')}",
            "the tag's token at the service": f"Bearer {self.token(tag)}",
            "a forged signature": f"Bearer {header}.{payload}.{'A' * 342}",
            "not a JWT": "Bearer not-a-token",
            "not Bearer": f"Basic {self.token(url)}",
            "no token after Bearer": "Bearer ",
        }
        channel = self.channel(self.private)
        for case, value in bad.items():
            with self.subTest(case):
                self.assert_refused(
                    channel, [("authorization", value)], grpc.StatusCode.UNAUTHENTICATED, 401
                )
        self.assertNotIn(payload, self.private_output.getvalue())

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

    def test_bytes_that_are_not_ascii_are_401_and_the_front_end_answers_on(self) -> None:
        for value in (b"Bearer \xff\xfe", b"Bearer \xc3\xa9t\xc3\xa9", b"\x00\x01"):
            with self.subTest(value):
                status = self.raw_status(self.private, [(b"authorization", value)])
                self.assertEqual(status, 401)
        good = [("authorization", f"Bearer {self.token(self.url(self.private))}")]
        self.assertIn("authorization", self.call(self.channel(self.private), good))

    def test_a_header_block_without_end_drops_only_its_connection(self) -> None:
        good = [(b"authorization", f"Bearer {self.token(self.url(self.private))}".encode())]
        with socket.create_connection(("127.0.0.1", self.private.port), timeout=10) as sock:
            connection = h2.connection.H2Connection()
            connection.initiate_connection()
            connection.send_headers(1, self.request_headers(self.private) + good, end_stream=True)
            sock.sendall(connection.data_to_send())
            # Stream 3: HEADERS without END_HEADERS, then CONTINUATION frames without end.
            sock.sendall(struct.pack(">BHBBI", 0, 1, 0x1, 0, 3) + b"\x82")
            dropped = False
            try:
                for _ in range(64):  # 64 x 16 kB: 1 MiB, over the front end's bound
                    sock.sendall(struct.pack(">BHBBI", 0, 16384, 0x9, 0, 3) + b"\x00" * 16384)
                while sock.recv(65536):
                    pass
                dropped = True
            except (ConnectionResetError, BrokenPipeError):
                dropped = True
            self.assertTrue(dropped)
        self.assertIn(
            "connection dropped: a header block over 262144 bytes", self.private_output.getvalue()
        )
        self.assertIn(
            "authorization",
            self.call(self.channel(self.private), [("authorization", good[0][1].decode())]),
        )

    def test_x_serverless_authorization_is_checked_and_authorization_passes_untouched(
        self,
    ) -> None:
        channel = self.channel(self.private)
        own = "Bearer for-the-container-itself"
        good = self.token(self.url(self.private))
        seen = self.call(
            channel,
            [("x-serverless-authorization", f"Bearer {good}"), ("authorization", own)],
        )
        self.assertTrue(seen["x-serverless-authorization"].endswith("SIGNATURE_REMOVED_BY_GOOGLE"))
        self.assertEqual(seen["authorization"], own)
        # A good Authorization does not make up for a bad X-Serverless-Authorization.
        self.assert_refused(
            channel,
            [("x-serverless-authorization", "Bearer forged"), ("authorization", f"Bearer {good}")],
            grpc.StatusCode.UNAUTHENTICATED,
            401,
        )

    def test_a_header_name_that_is_not_lowercase_is_400(self) -> None:
        good = f"Bearer {self.token(self.url(self.private))}".encode()
        for name in (b"X-Serverless-Authorization", b"x-serverless-authorization ", b"x y"):
            with self.subTest(name):
                client = RawClient(self.private.port)
                self.addCleanup(client.close)
                headers = [(b"authorization", good), (name, b"Bearer forged")]
                client.request(1, self.request_headers(self.private) + headers, end=True)
                self.assert_answered(client, 1, 400)
        self.assertIn(
            "400 (a header name that is not a lowercase token)", self.private_output.getvalue()
        )

    def test_a_repeated_token_header_is_401(self) -> None:
        good = f"Bearer {self.token(self.url(self.private))}"
        self.assert_refused(
            self.channel(self.private),
            [("authorization", good), ("authorization", good)],
            grpc.StatusCode.UNAUTHENTICATED,
            401,
        )

    def test_refusals_and_passes_alternate_on_one_connection(self) -> None:
        channel = self.channel(self.private)
        good = [("authorization", f"Bearer {self.token(self.url(self.private))}")]
        for index in range(60):
            # Headers that HPACK indexes, repeated, so both sides' dynamic tables are used.
            extra = [("x-request-note", f"call {index % 3}")]
            if index % 3 == 0:
                self.assert_refused(channel, extra, grpc.StatusCode.PERMISSION_DENIED, 403)
            else:
                seen = self.call(channel, good + extra)
                self.assertEqual(seen["x-request-note"], f"call {index % 3}")

    def test_a_refused_stream_with_a_body_does_not_stall_the_connection(self) -> None:
        channel = self.channel(self.private)
        good = [("authorization", f"Bearer {self.token(self.url(self.private))}")]
        count = channel.stream_unary(STREAM_METHOD)
        chunk = b"x" * 60000
        # 4 x 60 kB a call: more than the 64 kB connection window. Many calls: a gRPC client
        # that gets RST_STREAM right after the answer may report INTERNAL ("Stream removed").
        for _ in range(100):
            with self.assertRaises(grpc.RpcError) as caught:
                count(iter([chunk] * 4), timeout=10)
            self.assertEqual(
                caught.exception.code(),
                grpc.StatusCode.PERMISSION_DENIED,
                caught.exception.details(),
            )
        self.assertEqual(count(iter([chunk] * 4), metadata=good, timeout=10), b"240000")

    def test_a_header_block_larger_than_a_frame(self) -> None:
        good = [("authorization", f"Bearer {self.token(self.url(self.private))}")]
        big = [(f"x-big-{i}", "v" * 4000) for i in range(6)]  # 24 kB: over 16 kB a frame
        seen = self.call(self.channel(self.private), good + big)
        self.assertEqual(seen["x-big-5"], "v" * 4000)

    def test_a_public_service_checks_nothing_and_changes_nothing(self) -> None:
        forged = "Bearer a.b.c"
        seen = self.call(self.channel(self.public), [("authorization", forged)])
        self.assertEqual(seen["authorization"], forged)
        self.assertNotIn("authorization", self.call(self.channel(self.public), []))

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

    def test_a_header_block_on_a_closed_or_skipped_stream_is_not_a_request(self) -> None:
        # A refused request's stream id used again, and an id below a refused one: neither is
        # a stream the instance has open, so neither block may reach it as trailers would.
        for first, second in ((1, 1), (5, 3)):
            with self.subTest(first=first, second=second):
                client = self.raw_client()
                sneaked = [*self.request_headers(self.private), (b"x-sneaked", b"yes")]
                client.request(first, sneaked, end=True)
                self.assert_answered(client, first, 403)
                client.request(second, sneaked, end=False)
                client.send(DATA, END_STREAM, second, EMPTY_MESSAGE)
                kind, _, payload = client.next_on(second)
                self.assertEqual(kind, RST_STREAM, f"the instance answered: {payload!r}")
                self.assertEqual(payload, STREAM_CLOSED.to_bytes(4, "big"))
                self.assert_still_answers(client, 7)
        self.assertIn("a header block on a closed stream", self.private_output.getvalue())

    def test_a_token_with_more_segments_is_401_and_never_logged(self) -> None:
        token = self.token(self.url(self.private))
        signature = token.rpartition(".")[2]
        for value in (f"Bearer {token}.", f"Bearer {token}.more", f"Bearer x.{token}"):
            with self.subTest(value.replace(token, "TOKEN")):
                self.assert_refused(
                    self.channel(self.private),
                    [("authorization", value)],
                    grpc.StatusCode.UNAUTHENTICATED,
                    401,
                )
        self.assertIn("401 (the ID token is refused: not a JWT", self.private_output.getvalue())
        self.assertNotIn(signature, self.private_output.getvalue())

    def test_a_refusal_never_lands_inside_the_instance_s_header_block(self) -> None:
        front_end, client, _ = self.raw_client_to(HeldHeaderBlock())
        kind, flags, stream_id, _ = client.next_frame()
        self.assertEqual((kind, flags & END_HEADERS, stream_id), (HEADERS, 0, 1))
        client.request(3, self.request_headers(front_end), end=True)  # no token: 403
        # The instance ends its block once this arrives: more than the refusal's body, the
        # part of a client's WINDOW_UPDATE that the front end keeps.
        client.send(WINDOW_UPDATE, 0, 0, (1 << 16).to_bytes(4, "big"))
        kind, flags, stream_id, _ = client.next_frame()
        self.assertEqual((kind, flags & END_HEADERS, stream_id), (CONTINUATION, END_HEADERS, 1))
        self.assert_answered(client, 3, 403)

    def test_a_refusal_after_the_instance_closed_ends_the_connection(self) -> None:
        front_end, client, _ = self.raw_client_to(ClosingInstance())
        with self.assertRaises(ConnectionError):  # the instance's end, passed on
            client.next_frame()
        # The front end must end the connection, not crash writing the refusal to a client
        # side it has shut (asyncio logs "Unhandled exception in client_connected_cb").
        with self.assertNoLogs("asyncio", level="ERROR"):
            client.request(3, self.request_headers(front_end), end=True)  # no token: refused
            closed = False
            for _ in range(500):
                try:
                    client.send(PING, 0, 0, b"\0" * 8)
                except (BrokenPipeError, ConnectionResetError):
                    closed = True
                    break
                time.sleep(0.01)
        self.assertTrue(closed, "the front end kept a connection whose instance had closed")
        # And it still answers: a host it does not serve is its own 404, which a gRPC client
        # reports as UNIMPLEMENTED.
        with self.assertRaises(grpc.RpcError) as caught:
            self.call(self.channel(front_end, "nobody.kit-local.localhost"), [])
        self.assertEqual(caught.exception.code(), grpc.StatusCode.UNIMPLEMENTED)

    def test_the_front_end_answers_pings_so_refusals_do_not_get_the_connection_goaway(
        self,
    ) -> None:
        # A gRPC client pings (BDP) on data it gets, the refusals' bodies too. Pings reaching
        # an instance that sent nothing are strikes to a gRPC server, which ends the connection
        # (GOAWAY ENHANCE_YOUR_CALM, "too_many_pings") for every call on it.
        client = self.raw_client()
        for index in range(40):
            stream_id = 1 + 2 * index
            client.request(stream_id, self.request_headers(self.private), end=True)
            self.assert_answered(client, stream_id, 403)
            client.send(PING, 0, 0, index.to_bytes(8, "big"))
            kind = None
            while kind != PING:
                kind, flags, _, payload = client.next_frame()
            self.assertEqual((flags, payload), (ACK, index.to_bytes(8, "big")))
        self.assert_still_answers(client, 81)

    def test_the_window_a_client_gives_back_for_refusals_is_not_the_instance_s(self) -> None:
        # A client gives back the connection window the refusals' bodies took; passed on, the
        # instance would think it may send that much more than the client allows.
        sentinel = 7
        instance = RecordingInstance(sentinel)
        front_end, _ = start_front_end(
            {HOST: instance.port}, Access(False), self.issuer.verify_id_token
        )
        client = RawClient(front_end.port)
        self.addCleanup(client.close)
        consumed = 0
        for stream_id in (1, 3, 5):
            client.request(stream_id, self.request_headers(front_end), end=True)
            client.next_on(stream_id)  # the refusal's HEADERS
            _, _, body = client.next_on(stream_id)
            consumed += len(body)  # type: ignore[arg-type]
        client.send(WINDOW_UPDATE, 0, 0, consumed.to_bytes(4, "big"))
        client.send(WINDOW_UPDATE, 0, 0, sentinel.to_bytes(4, "big"))
        self.assertTrue(instance.done.wait(10), "the sentinel never reached the instance")
        self.assertEqual(instance.increments, [sentinel])

    def test_a_later_request_s_authority_is_not_its_audience(self) -> None:
        # The connection goes where its first request's :authority routed it; a later request
        # naming another host, with a token for that host, is still a call of this service.
        client = self.raw_client()
        self.assert_still_answers(client, 1)
        other = f"other.kit-local.localhost:{self.private.port}".encode()
        token = self.token(f"http://{other.decode()}")
        headers = [
            (name, other if name == b":authority" else value)
            for name, value in self.request_headers(self.private)
        ]
        client.request(3, [*headers, (b"authorization", f"Bearer {token}".encode())], end=True)
        self.assert_answered(client, 3, 401)
        self.assert_still_answers(client, 5)

    def test_streaming_calls_pass_whole_refused_or_cancelled_ones_end(self) -> None:
        channel = self.channel(self.private)
        good = [("authorization", f"Bearer {self.token(self.url(self.private))}")]
        messages = [str(index).encode() * 100 for index in range(2000)]
        echo = channel.stream_stream(ECHO_METHOD)
        self.assertEqual(list(echo(iter(messages), metadata=good, timeout=30)), messages)
        repeat = channel.unary_stream(REPEAT_METHOD)
        replies = list(repeat(b"2000", metadata=good, timeout=30))
        self.assertEqual(replies, [str(index).encode() for index in range(2000)])
        with self.assertRaises(grpc.RpcError) as caught:
            list(echo(iter(messages), timeout=30))
        self.assertEqual(caught.exception.code(), grpc.StatusCode.PERMISSION_DENIED)
        # Cancelled by the client mid-stream: the connection serves on.
        call = echo(iter(messages * 10), metadata=good, timeout=30)
        self.assertEqual([next(call) for _ in range(10)], messages[:10])
        call.cancel()
        self.assertEqual(list(echo(iter(messages[:3]), metadata=good, timeout=30)), messages[:3])

    def test_the_instance_s_header_table_size_holds_for_what_the_front_end_encodes(self) -> None:
        instance = SmallTableInstance(requests=3)
        front_end, client, good = self.raw_client_to(instance)
        # The instance's PING comes after its SETTINGS, which the client has acknowledged then.
        self.assertEqual(client.next_frame()[0], PING)
        for stream_id in (3, 5):
            client.request(stream_id, self.request_headers(front_end) + good, end=True)
        self.assertTrue(instance.done.wait(10), "the requests never reached the instance")
        for decoded in instance.decoded:
            self.assertIsInstance(decoded, dict, decoded)
            self.assertEqual(decoded[b":path"], METHOD.encode())  # type: ignore[index]


if __name__ == "__main__":
    absltest.main()
