"""Bare HTTP/2 instances for the front end's gate tests: each does one thing no gRPC server
does on purpose, so that a test can put the front end in that state without timing.

Each serves one connection on a loopback port: it reads the client's preface, sends its first
frames (its SETTINGS), acknowledges the client's SETTINGS, and hands every other frame to
`on_frame`. A subclass sets its own attributes before calling `BareInstance.__init__`, which
starts the serving thread.
"""

from __future__ import annotations

import socket
import struct
import threading
from typing import BinaryIO

import hpack

from tests.cloud_run.raw_h2 import ACK, PREFACE
from tools.cloud_run.request_gate import (
    CONTINUATION,
    END_HEADERS,
    HEADERS,
    PING,
    SETTINGS,
    WINDOW_UPDATE,
    frame,
)

SETTINGS_HEADER_TABLE_SIZE = 0x1


def read_frame(stream: BinaryIO) -> tuple[int, int, int, bytes] | None:
    """The next frame (kind, flags, stream id, payload), or None at end of stream."""
    header = stream.read(9)
    if len(header) < 9:
        return None
    high, low, kind, flags, stream_id = struct.unpack(">BHBBI", header)
    return kind, flags, stream_id & 0x7FFFFFFF, stream.read((high << 16) | low)


class BareInstance:
    def __init__(self) -> None:
        self.server = socket.create_server(("127.0.0.1", 0))
        self.port = self.server.getsockname()[1]
        threading.Thread(target=self.serve, name=type(self).__name__, daemon=True).start()

    def first_frames(self) -> bytes:
        return frame(SETTINGS, 0, 0, b"")

    def on_frame(
        self, connection: socket.socket, kind: int, flags: int, stream_id: int, payload: bytes
    ) -> None:
        """A frame other than the client's SETTINGS; nothing by default."""

    def serve(self) -> None:
        connection, _ = self.server.accept()
        with connection, connection.makefile("rb") as stream:
            if stream.read(len(PREFACE)) != PREFACE:
                return
            connection.sendall(self.first_frames())
            while received := read_frame(stream):
                kind, flags, stream_id, payload = received
                if kind == SETTINGS and not flags & ACK:
                    connection.sendall(frame(SETTINGS, ACK, 0, b""))
                else:
                    self.on_frame(connection, kind, flags, stream_id, payload)


class HeldHeaderBlock(BareInstance):
    """Answers stream 1 with a header block in two frames, HEADERS then CONTINUATION, and sends
    the CONTINUATION only once a connection WINDOW_UPDATE arrives after it: a test sends a
    request to be refused before that WINDOW_UPDATE, so the front end's answer to it falls due
    while the instance's header block is open (where HTTP/2 allows no other frame)."""

    def __init__(self) -> None:
        self.block = hpack.Encoder().encode(
            [(b":status", b"200"), (b"content-type", b"application/grpc")]
        )
        super().__init__()

    def on_frame(
        self, connection: socket.socket, kind: int, flags: int, stream_id: int, payload: bytes
    ) -> None:
        if kind == HEADERS and stream_id == 1:
            connection.sendall(frame(HEADERS, 0, 1, self.block[:2]))
        elif kind == WINDOW_UPDATE and stream_id == 0:
            connection.sendall(frame(CONTINUATION, END_HEADERS, 1, self.block[2:]))


class RecordingInstance(BareInstance):
    """Records the connection-level WINDOW_UPDATE increments it receives and answers nothing: a
    test reads what the front end let through once a sentinel increment arrives."""

    def __init__(self, sentinel: int) -> None:
        self.sentinel = sentinel
        self.increments: list[int] = []
        self.done = threading.Event()
        super().__init__()

    def on_frame(
        self, connection: socket.socket, kind: int, flags: int, stream_id: int, payload: bytes
    ) -> None:
        if kind == WINDOW_UPDATE and stream_id == 0:
            increment = struct.unpack(">I", payload)[0]
            self.increments.append(increment)
            if increment == self.sentinel:
                self.done.set()


class SmallTableInstance(BareInstance):
    """An HPACK table of 0 bytes (SETTINGS_HEADER_TABLE_SIZE 0, as an HTTP/2 server may set
    it): it decodes each request's header block as such a server would, strictly once its
    SETTINGS are acknowledged, records the headers or the error, and answers nothing but a PING
    after its SETTINGS (for a client to know they have reached it)."""

    def __init__(self, requests: int) -> None:
        self.requests = requests
        self.decoded: list[dict | str] = []
        self.done = threading.Event()
        self.decoder = hpack.Decoder()
        super().__init__()

    def first_frames(self) -> bytes:
        return frame(SETTINGS, 0, 0, struct.pack(">HI", SETTINGS_HEADER_TABLE_SIZE, 0)) + frame(
            PING, 0, 0, b"settings"
        )

    def on_frame(
        self, connection: socket.socket, kind: int, flags: int, stream_id: int, payload: bytes
    ) -> None:
        if kind == SETTINGS:  # the client's ACK of the table size
            self.decoder.max_allowed_table_size = 0
        elif kind == HEADERS:
            try:
                self.decoded.append(dict(self.decoder.decode(payload, raw=True)))
            except hpack.HPACKError as error:
                self.decoded.append(f"{type(error).__name__}: {error}")
            if len(self.decoded) == self.requests:
                self.done.set()


class ClosingInstance(BareInstance):
    """Sends its SETTINGS and closes each connection at once, as an instance that dies or ends
    a connection does: the gate must then end that connection, not crash writing a refusal to a
    client side already shut."""

    def serve(self) -> None:
        while True:
            connection, _ = self.server.accept()
            with connection:
                connection.sendall(self.first_frames())
