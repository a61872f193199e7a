"""A bare instance that records the connection-level WINDOW_UPDATE increments it receives and
answers nothing: a test reads what the front end let through once a sentinel increment
arrives, with no timing involved."""

from __future__ import annotations

import socket
import struct
import threading

from tests.cloud_run.held_header_block import read_frame
from tests.cloud_run.raw_h2 import ACK, PREFACE
from tools.cloud_run.request_gate import SETTINGS, WINDOW_UPDATE, frame


class RecordingInstance:
    def __init__(self, sentinel: int) -> None:
        self.sentinel = sentinel
        self.increments: list[int] = []
        self.done = threading.Event()
        self.server = socket.create_server(("127.0.0.1", 0))
        self.port = self.server.getsockname()[1]
        threading.Thread(target=self.serve, name="recording instance", daemon=True).start()

    def serve(self) -> None:
        connection, _ = self.server.accept()
        with connection, connection.makefile("rb") as stream:
            if stream.read(len(PREFACE)) != PREFACE:
                return
            connection.sendall(frame(SETTINGS, 0, 0, b""))
            while received := read_frame(stream):
                kind, flags, stream_id, payload = received
                if kind == SETTINGS and not flags & ACK:
                    connection.sendall(frame(SETTINGS, ACK, 0, b""))
                elif kind == WINDOW_UPDATE and stream_id == 0:
                    increment = struct.unpack(">I", payload)[0]
                    self.increments.append(increment)
                    if increment == self.sentinel:
                        self.done.set()
