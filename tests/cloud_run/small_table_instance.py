"""A bare instance whose HPACK table is 0 bytes (SETTINGS_HEADER_TABLE_SIZE 0, as an HTTP/2
server may set it): it decodes each request's header block as such a server would, strictly
once its SETTINGS are acknowledged, records the headers or the error, and answers nothing but
a PING after its SETTINGS (for a client to know they have reached it)."""

from __future__ import annotations

import socket
import struct
import threading

import hpack

from tests.cloud_run.held_header_block import read_frame
from tests.cloud_run.raw_h2 import ACK, PREFACE
from tools.cloud_run.request_gate import HEADERS, PING, SETTINGS, frame

SETTINGS_HEADER_TABLE_SIZE = 0x1


class SmallTableInstance:
    def __init__(self, requests: int) -> None:
        self.requests = requests
        self.decoded: list[dict | str] = []
        self.done = threading.Event()
        self.server = socket.create_server(("127.0.0.1", 0))
        self.port = self.server.getsockname()[1]
        threading.Thread(target=self.serve, name="small table instance", daemon=True).start()

    def serve(self) -> None:
        connection, _ = self.server.accept()
        decoder = hpack.Decoder()
        with connection, connection.makefile("rb") as stream:
            if stream.read(len(PREFACE)) != PREFACE:
                return
            connection.sendall(
                frame(SETTINGS, 0, 0, struct.pack(">HI", SETTINGS_HEADER_TABLE_SIZE, 0))
                + frame(PING, 0, 0, b"settings")
            )
            while received := read_frame(stream):
                kind, flags, _, payload = received
                if kind == SETTINGS and not flags & ACK:
                    connection.sendall(frame(SETTINGS, ACK, 0, b""))
                elif kind == SETTINGS:
                    decoder.max_allowed_table_size = 0
                elif kind == HEADERS:
                    try:
                        self.decoded.append(dict(decoder.decode(payload, raw=True)))
                    except hpack.HPACKError as error:
                        self.decoded.append(f"{type(error).__name__}: {error}")
                    if len(self.decoded) == self.requests:
                        self.done.set()
