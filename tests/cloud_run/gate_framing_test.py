"""The front end's gate as HTTP/2 relays it, over real sockets (gate_fixture.py): what a
refusal does to the connection it is on, for clients and instances that push the protocol.

Refusals and passes alternate on one connection for many calls (the HPACK state on both sides
stays in step), a refused stream's request body is dropped, a header block larger than a frame
is split, one without end drops its connection only, one on a stream the instance does not have
open (a refused stream's id used again, an id below a refused one; a bare client, raw_h2.py) is
reset and never reaches it, a refusal waits for the end of a header block the instance has open,
a refusal after the instance closed ends the connection, the front end answers the client's
PINGs (relayed after refusals, they made a gRPC instance end the connection), the window a
client gives back for refusals never reaches the instance, streaming calls (2000 messages each
way) pass whole and end when refused or cancelled, and the front end's HPACK table towards an
instance keeps to the size the instance sets (bare_instances.py).
"""

from __future__ import annotations

import socket
import struct
import time

import grpc
import h2.connection
import h2.events
from absl.testing import absltest

from tests.cloud_run.bare_instances import (
    ClosingInstance,
    HeldHeaderBlock,
    RecordingInstance,
    SmallTableInstance,
)
from tests.cloud_run.front_end_fixture import start_front_end
from tests.cloud_run.gate_fixture import (
    ECHO_METHOD,
    EMPTY_MESSAGE,
    HOST,
    METHOD,
    REPEAT_METHOD,
    STREAM_CLOSED,
    STREAM_METHOD,
    GateTestCase,
)
from tests.cloud_run.raw_h2 import ACK, RawClient
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


class GateFramingTest(GateTestCase):
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
