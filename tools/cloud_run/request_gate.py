"""The front end's gate for a private service: each request's headers are checked (the invoker
check, invoker_check.py) before they reach the instance, and a request that fails is answered
by the front end itself.

The client's frames are relayed one by one. A header block is decoded with the client's HPACK
state and encoded again with the front end's own state towards the instance, since it may
change (a token's signature is removed) or be withheld. A refused request gets its HTTP answer
(status and a one-line body) written to the client between the instance's frames, encoded
without HPACK's dynamic table so that the client's decoder stays in step with the instance's
encoder. Later frames of a refused stream are dropped: the instance never saw that stream, and
the client gets the connection window of its dropped DATA back, while the window it gives back
for the refusals' bodies is kept from the instance. The client's PINGs are answered by the front
end. A header block on a stream the instance does not have open (one refused and ended, one the
client skipped) is no one's trailers: the instance would take it for a new request, so it is
answered with RST_STREAM and never relayed.
"""

from __future__ import annotations

import asyncio
import struct
from collections.abc import Callable

import hpack
from hpack.struct import NeverIndexedHeaderTuple

from tools.cloud_run.invoker_check import Access, Refusal, Verifier, check

DATA, HEADERS, RST_STREAM, SETTINGS, PUSH_PROMISE, PING = 0x0, 0x1, 0x3, 0x4, 0x5, 0x6
WINDOW_UPDATE, CONTINUATION = 0x8, 0x9
END_STREAM, ACK, END_HEADERS, PADDED, PRIORITY = 0x1, 0x1, 0x4, 0x8, 0x20
NO_ERROR, STREAM_CLOSED = 0x0, 0x5
SETTINGS_HEADER_TABLE_SIZE = 0x1
# The largest frame every HTTP/2 peer accepts (SETTINGS_MAX_FRAME_SIZE's initial value).
MIN_MAX_FRAME_SIZE = 16384
# A header block's most bytes, over all its frames: a client that sends CONTINUATION frames
# without end would otherwise fill the front end's memory (the first request's block is bounded
# by front_end.py's preamble limit). Far above gRPC's own metadata limits.
MAX_HEADER_BLOCK_BYTES = 256 * 1024
# Refused streams a client leaves open (no END_STREAM, no reset) before its connection is
# dropped: each costs the gate an entry for as long as the connection lives.
MAX_OPEN_REFUSED = 1000


class ProtocolError(Exception):
    """The client broke HTTP/2 framing; the connection is dropped."""


def frame(kind: int, flags: int, stream_id: int, payload: bytes) -> bytes:
    length = len(payload)
    return struct.pack(">BHBBI", length >> 16, length & 0xFFFF, kind, flags, stream_id) + payload


def split_frames(data: bytes) -> list[tuple[int, int, int, bytes]]:
    """(kind, flags, stream id, payload) of each whole frame in `data`."""
    frames, at = [], 0
    while at < len(data):
        if at + 9 > len(data):
            raise ProtocolError("a frame cut short")
        length_high, length_low, kind, flags, stream_id = struct.unpack_from(">BHBBI", data, at)
        length = (length_high << 16) | length_low
        frames.append((kind, flags, stream_id & 0x7FFFFFFF, data[at + 9 : at + 9 + length]))
        at += 9 + length
    return frames


def refusal_body(refusal: Refusal) -> bytes:
    return f"{refusal.status}: {refusal.reason}\n".encode()


def refusal_frames(stream_id: int, refusal: Refusal) -> bytes:
    """The front end's own answer to one request: status and body. Static-table or literal
    never-indexed headers only. No RST_STREAM after it, even when the client has more to send:
    a gRPC client that gets one right after the body may report INTERNAL ("Stream removed")
    instead of the status; it resets the stream itself once it has the answer, and the body
    it sent until then is dropped."""
    body = refusal_body(refusal)
    block = hpack.Encoder().encode(
        [
            NeverIndexedHeaderTuple(b":status", str(refusal.status).encode()),
            NeverIndexedHeaderTuple(b"content-type", b"text/plain; charset=utf-8"),
            NeverIndexedHeaderTuple(b"content-length", str(len(body)).encode()),
        ],
        huffman=False,
    )
    return frame(HEADERS, END_HEADERS, stream_id, block) + frame(DATA, END_STREAM, stream_id, body)


class ToClient:
    """The client's direction: the instance's frames as they come, and the gate's own answers
    between them, but never inside one of the instance's header blocks (HEADERS or PUSH_PROMISE
    up to END_HEADERS), where HTTP/2 allows no other frame: those wait for its end."""

    def __init__(self, write: Callable[[bytes], None]) -> None:
        self.write = write
        self.in_block = False
        self.held = bytearray()
        # Set when the instance's direction has ended and the client's side is shut for
        # writing: an answer due after that ends the gate's direction too.
        self.closed = False

    def instance(self, kind: int, flags: int, stream_id: int, payload: bytes) -> None:
        self.write(frame(kind, flags, stream_id, payload))
        if kind in (HEADERS, PUSH_PROMISE, CONTINUATION):
            self.in_block = not flags & END_HEADERS
        if not self.in_block and self.held:
            self.write(bytes(self.held))
            self.held.clear()

    def own(self, data: bytes) -> None:
        if self.closed:
            raise ConnectionResetError("the instance closed the connection")
        if not self.in_block:
            self.write(data)
            return
        self.held += data
        if len(self.held) > MAX_HEADER_BLOCK_BYTES:
            # An instance that never ends its block would have the front end hold answers
            # without end.
            raise ProtocolError("answers held over the instance's unfinished header block")


class RequestGate:
    """One connection's client-to-instance direction, frame by frame."""

    def __init__(
        self,
        access: Access,
        called_at: str,
        verify: Verifier,
        to_client: Callable[[bytes], None],
        log: Callable[[str], None],
    ) -> None:
        self.access = access
        self.called_at = called_at
        self.verify = verify
        self.to_client = to_client
        self.log = log
        self.decoder = hpack.Decoder()
        self.encoder = hpack.Encoder()
        # Client stream ids only grow: a header block on a new, higher id is a request; on an
        # id already seen, the trailers of one.
        self.last_request = 0
        # Streams passed on that the client may still send on (until its END_STREAM, its reset
        # or the instance's): the only ones a header block at or below `last_request` may be
        # the trailers of.
        self.open: set[int] = set()
        # Refused streams the client may still send frames on (until its END_STREAM or reset).
        self.refused: set[int] = set()
        # Connection window the refusals' bodies took, which the client gives back with its
        # own WINDOW_UPDATEs: that part of them is the front end's, not the instance's.
        self.owed = 0
        # A header block still waiting for its CONTINUATION: stream id, END_STREAM, fragments.
        self.pending: tuple[int, bool, bytearray] | None = None

    def relay(self, kind: int, flags: int, stream_id: int, payload: bytes) -> bytes:
        """What goes on to the instance for one client frame (maybe nothing)."""
        if self.pending is not None:
            if kind != CONTINUATION or stream_id != self.pending[0]:
                raise ProtocolError("a header block without its CONTINUATION")
            self.pending[2].extend(payload)
            if len(self.pending[2]) > MAX_HEADER_BLOCK_BYTES:
                raise ProtocolError(f"a header block over {MAX_HEADER_BLOCK_BYTES} bytes")
            return self._headers_done() if flags & END_HEADERS else b""
        if kind == CONTINUATION:
            raise ProtocolError("CONTINUATION without HEADERS")
        if kind == PING and not flags & ACK:
            # The front end answers for its own connection, as a proxy does. Relayed, a ping the
            # client sent on a refusal's body reaches an instance that sent nothing: a strike
            # to a gRPC server, which then ends the connection ("too_many_pings").
            if stream_id or len(payload) != 8:
                raise ProtocolError("a PING not of 8 bytes on stream 0")
            self.to_client(frame(PING, ACK, 0, payload))
            return b""
        if kind == HEADERS:
            if stream_id == 0:
                raise ProtocolError("HEADERS on stream 0")
            if flags & PADDED:
                if not payload or payload[0] >= len(payload):
                    raise ProtocolError("bad padding")
                payload = payload[1 : len(payload) - payload[0]]
            if flags & PRIORITY:
                payload = payload[5:]  # priority is advice; the instance does without it
            self.pending = (stream_id, bool(flags & END_STREAM), bytearray(payload))
            return self._headers_done() if flags & END_HEADERS else b""
        if kind == WINDOW_UPDATE and stream_id == 0 and self.owed:
            return self._window_update(payload)
        if stream_id in self.refused:
            if kind == DATA and payload:
                # The client spent connection window on bytes no instance will acknowledge.
                self.to_client(frame(WINDOW_UPDATE, 0, 0, struct.pack(">I", len(payload))))
            if kind == RST_STREAM or (kind == DATA and flags & END_STREAM):
                self.refused.discard(stream_id)
            return b""
        if kind == RST_STREAM or (kind == DATA and flags & END_STREAM):
            self.open.discard(stream_id)
        return frame(kind, flags, stream_id, payload)

    def _window_update(self, payload: bytes) -> bytes:
        """A connection WINDOW_UPDATE less what it gives back for the refusals' bodies."""
        if len(payload) != 4:
            raise ProtocolError("a WINDOW_UPDATE not of 4 bytes")
        increment = struct.unpack(">I", payload)[0] & 0x7FFFFFFF
        taken = min(increment, self.owed)
        self.owed -= taken
        if increment == taken:
            return b""
        return frame(WINDOW_UPDATE, 0, 0, struct.pack(">I", increment - taken))

    def instance_frame(self, kind: int, flags: int, stream_id: int, payload: bytes) -> None:
        """Notes a frame the instance sent: after its reset a stream takes no trailers, and its
        SETTINGS_HEADER_TABLE_SIZE bounds the front end's HPACK table towards it, and lets the
        client's grow that far (the front end decodes the client's blocks: a smaller table
        there is the client's affair)."""
        if kind == RST_STREAM:
            self.open.discard(stream_id)
        if kind == SETTINGS and not flags & ACK:
            for at in range(0, len(payload) - len(payload) % 6, 6):
                setting, value = struct.unpack_from(">HI", payload, at)
                if setting == SETTINGS_HEADER_TABLE_SIZE:
                    self.encoder.header_table_size = value
                    self.decoder.max_allowed_table_size = max(
                        value, self.decoder.max_allowed_table_size
                    )

    def _headers_done(self) -> bytes:
        assert self.pending is not None
        stream_id, end_stream, block = self.pending
        self.pending = None
        try:
            headers = self.decoder.decode(bytes(block), raw=True)
        except hpack.HPACKError as error:
            raise ProtocolError(f"a header block HPACK cannot decode: {error}") from None
        if stream_id in self.refused:
            if end_stream:
                self.refused.discard(stream_id)
            return b""
        if stream_id > self.last_request:
            self.last_request = stream_id
            verdict = check(headers, self.access, self.called_at, self.verify)
            if isinstance(verdict, Refusal):
                if not end_stream:
                    if len(self.refused) >= MAX_OPEN_REFUSED:
                        raise ProtocolError("too many refused requests left open")
                    self.refused.add(stream_id)
                self.log(f"{verdict.status} ({verdict.reason})")
                self.to_client(refusal_frames(stream_id, verdict))
                self.owed += len(refusal_body(verdict))
                return b""
            headers = verdict
            if not end_stream:
                self.open.add(stream_id)
        elif stream_id in self.open:
            if end_stream:
                self.open.discard(stream_id)
        else:
            self.log("a header block on a closed stream: reset, not relayed")
            self.to_client(frame(RST_STREAM, 0, stream_id, struct.pack(">I", STREAM_CLOSED)))
            return b""
        encoded = self.encoder.encode(headers)
        chunks = [
            encoded[at : at + MIN_MAX_FRAME_SIZE]
            for at in range(0, max(len(encoded), 1), MIN_MAX_FRAME_SIZE)
        ]
        out = bytearray()
        for index, chunk in enumerate(chunks):
            last = END_HEADERS if index == len(chunks) - 1 else 0
            if index == 0:
                out += frame(HEADERS, last | (END_STREAM if end_stream else 0), stream_id, chunk)
            else:
                out += frame(CONTINUATION, last, stream_id, chunk)
        return bytes(out)


async def read_frame(reader: asyncio.StreamReader) -> tuple[int, int, int, bytes]:
    header = await reader.readexactly(9)
    length_high, length_low, kind, flags, stream_id = struct.unpack(">BHBBI", header)
    payload = await reader.readexactly((length_high << 16) | length_low)
    return kind, flags, stream_id & 0x7FFFFFFF, payload
