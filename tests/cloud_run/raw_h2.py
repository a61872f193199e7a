"""A bare HTTP/2 client for tests that must send what no HTTP/2 library sends (a header block
on a closed stream, stream ids that go down): frames written with struct, header blocks
encoded and decoded with hpack, each frame read back whole."""

from __future__ import annotations

import socket
import struct

import hpack

from tools.cloud_run.request_gate import (
    CONTINUATION,
    END_HEADERS,
    END_STREAM,
    HEADERS,
    SETTINGS,
    frame,
)

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
ACK = 0x1
GOAWAY = 0x7


class RawClient:
    """One h2c connection; replies to SETTINGS with their ACK, nothing else on its own."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.encoder = hpack.Encoder()
        self.decoder = hpack.Decoder()
        self.received = b""
        self.sock.sendall(PREFACE + frame(SETTINGS, 0, 0, b""))

    def close(self) -> None:
        self.sock.close()

    def send(self, kind: int, flags: int, stream_id: int, payload: bytes) -> None:
        self.sock.sendall(frame(kind, flags, stream_id, payload))

    def request(self, stream_id: int, headers: list[tuple[bytes, bytes]], end: bool) -> None:
        flags = END_HEADERS | (END_STREAM if end else 0)
        self.send(HEADERS, flags, stream_id, self.encoder.encode(headers))

    def next_frame(self) -> tuple[int, int, int, bytes]:
        """The next frame other than SETTINGS; raises ConnectionError at end of stream or
        GOAWAY."""
        while True:
            while len(self.received) < 9 or len(self.received) < 9 + self.length():
                data = self.sock.recv(65536)
                if not data:
                    raise ConnectionError("the front end closed the connection")
                self.received += data
            length = self.length()
            _, _, kind, flags, stream_id = struct.unpack_from(">BHBBI", self.received)
            payload = self.received[9 : 9 + length]
            self.received = self.received[9 + length :]
            if kind == GOAWAY:
                # Debug data after the last stream id and the error code.
                raise ConnectionError(f"GOAWAY: {payload[8:].decode(errors='replace')}")
            if kind != SETTINGS:
                return kind, flags, stream_id & 0x7FFFFFFF, payload
            if not flags & ACK:
                self.send(SETTINGS, ACK, 0, b"")

    def length(self) -> int:
        high, low = struct.unpack_from(">BH", self.received)
        return (high << 16) | low

    def next_on(self, stream_id: int) -> tuple[int, int, bytes | dict]:
        """The next frame on `stream_id` (kind, flags, payload), a header block decoded (a dict;
        its CONTINUATION frames read too); other streams' frames are read and left."""
        while True:
            kind, flags, on, payload = self.next_frame()
            if kind == HEADERS:
                block, last = payload, flags
                while not last & END_HEADERS:
                    more_kind, last, _, more = self.next_frame()
                    assert more_kind == CONTINUATION, more_kind
                    block += more
                headers = dict(self.decoder.decode(block, raw=True))
                if on == stream_id:
                    return kind, flags, headers
            elif on == stream_id:
                return kind, flags, payload
