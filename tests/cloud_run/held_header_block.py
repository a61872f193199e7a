"""A bare instance that answers stream 1 with a header block in two frames, HEADERS then
CONTINUATION, and sends the CONTINUATION only once a connection WINDOW_UPDATE arrives after
it: a test sends a request to be refused before that WINDOW_UPDATE, so the front end's answer
to it falls due while the instance's header block is open (where HTTP/2 allows no other
frame)."""

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
    SETTINGS,
    WINDOW_UPDATE,
    frame,
)


def read_frame(stream: BinaryIO) -> tuple[int, int, int, bytes] | None:
    """The next frame (kind, flags, stream id, payload), or None at end of stream."""
    header = stream.read(9)
    if len(header) < 9:
        return None
    high, low, kind, flags, stream_id = struct.unpack(">BHBBI", header)
    return kind, flags, stream_id & 0x7FFFFFFF, stream.read((high << 16) | low)


class HeldHeaderBlock:
    def __init__(self) -> None:
        self.server = socket.create_server(("127.0.0.1", 0))
        self.port = self.server.getsockname()[1]
        threading.Thread(target=self.serve, name="held header block", daemon=True).start()

    def serve(self) -> None:
        connection, _ = self.server.accept()
        with connection, connection.makefile("rb") as stream:
            if stream.read(len(PREFACE)) != PREFACE:
                return
            connection.sendall(frame(SETTINGS, 0, 0, b""))
            block = hpack.Encoder().encode(
                [(b":status", b"200"), (b"content-type", b"application/grpc")]
            )
            while received := read_frame(stream):
                kind, flags, stream_id, _ = received
                if kind == SETTINGS and not flags & ACK:
                    connection.sendall(frame(SETTINGS, ACK, 0, b""))
                elif kind == HEADERS and stream_id == 1:
                    connection.sendall(frame(HEADERS, 0, 1, block[:2]))
                elif kind == WINDOW_UPDATE and stream_id == 0:
                    connection.sendall(frame(CONTINUATION, END_HEADERS, 1, block[2:]))
