"""gRPC calls as raw HTTP/2, with the h2 library: frames, headers and bytes of the test's
choosing, which a well-behaved gRPC client would never send."""

from __future__ import annotations

import dataclasses
import functools
import socket
import struct
from collections.abc import Callable

import h2.config
import h2.connection
import h2.events
import h2.exceptions
import h2.settings

CALL_TIMEOUT_SECONDS = 10.0


def grpc_frame(message: bytes) -> bytes:
    """A gRPC length-prefixed message: no compression, 4-byte big-endian length."""
    return struct.pack(">BI", 0, len(message)) + message


Header = tuple[str | bytes, str | bytes]


def request_headers(path: str | bytes, *extra: Header) -> list[Header]:
    return [
        (":method", "POST"),
        (":scheme", "http"),
        (":path", path),
        (":authority", "localhost"),
        ("content-type", "application/grpc"),
        ("te", "trailers"),
        *extra,
    ]


@dataclasses.dataclass
class Response:
    """What came back on one stream."""

    headers: dict[str, str] = dataclasses.field(default_factory=dict)
    data: bytes = b""
    reset: bool = False
    ended: bool = False

    @property
    def grpc_status(self) -> int | None:
        status = self.headers.get("grpc-status")
        return None if status is None else int(status)

    @property
    def grpc_message(self) -> str:
        return self.headers.get("grpc-message", "")


class Connection:
    """One HTTP/2 connection to the server on loopback."""

    def __init__(
        self,
        port: int,
        *,
        wait_for_settings: bool = True,
        validate_headers: bool = True,
        stream_window: int | None = None,
    ) -> None:
        """`validate_headers=False` sends header values as given (bytes that are not UTF-8,
        NUL, spaces at the ends), which h2 would otherwise refuse or trim. `stream_window`: the
        bytes the server may send on a stream before this client reads them (HTTP/2's initial
        window), for a client that reads slowly."""
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=CALL_TIMEOUT_SECONDS)
        config = h2.config.H2Configuration(
            client_side=True,
            header_encoding="utf-8",
            validate_outbound_headers=validate_headers,
            normalize_outbound_headers=validate_headers,
        )
        self.h2 = h2.connection.H2Connection(config)
        # Headers as plain literals: h2's Huffman coder (pure Python) takes a minute for a
        # megabyte of header, which is the client's cost, not the server's.
        encode = self.h2.encoder.encode
        self.h2.encoder.encode = functools.partial(encode, huffman=False)
        self.h2.initiate_connection()
        if stream_window is not None:
            self.h2.update_settings({h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: stream_window})
        self.responses: dict[int, Response] = {}
        self.closed = False
        self.settings_received = False
        self.flush()
        if wait_for_settings:
            self.read_until(lambda: self.settings_received)

    def flush(self) -> None:
        if data := self.h2.data_to_send():
            self.sock.sendall(data)

    def start(self, path: str | bytes, *extra: Header) -> int:
        stream_id = self.h2.get_next_available_stream_id()
        self.h2.send_headers(stream_id, request_headers(path, *extra))
        self.responses[stream_id] = Response()
        self.flush()
        return stream_id

    def send(self, stream_id: int, body: bytes, end: bool = True) -> None:
        """Sends as the server's flow control allows; stops early if the server ends the
        stream (as it does on a message over its limit)."""
        response = self.responses[stream_id]
        while True:
            window = min(
                self.h2.local_flow_control_window(stream_id), self.h2.max_outbound_frame_size
            )
            chunk, body = body[:window], body[window:]
            self.h2.send_data(stream_id, chunk, end_stream=end and not body)
            self.flush()
            if not body:
                return
            self.read_until(lambda: response.ended or response.reset or self._can_send(stream_id))
            if response.ended or response.reset or self.closed:
                return

    def _can_send(self, stream_id: int) -> bool:
        return self.h2.local_flow_control_window(stream_id) > 0

    def reset(self, stream_id: int) -> None:
        self.h2.reset_stream(stream_id, error_code=8)  # CANCEL, as gRPC clients send
        self.flush()

    def call(self, path: str | bytes, body: bytes, *extra: Header) -> Response:
        """A whole call: headers, the body (already gRPC-framed), then its response."""
        stream_id = self.start(path, *extra)
        self.send(stream_id, body)
        return self.wait(stream_id)

    def wait(self, stream_id: int) -> Response:
        response = self.responses[stream_id]
        self.read_until(lambda: response.ended or response.reset)
        return response

    def read_until(self, done: Callable[[], bool]) -> None:
        """Reads frames until `done()` is true or the server closes the connection."""
        while not done() and not self.closed:
            data = self.sock.recv(65536)
            if not data:
                self.closed = True
                return
            try:
                events = self.h2.receive_data(data)
            except h2.exceptions.ProtocolError:  # frames after the server ended the connection
                self.closed = True
                return
            for event in events:
                self._on(event)
            self.flush()

    def _on(self, event: h2.events.Event) -> None:
        response = self.responses.get(getattr(event, "stream_id", 0))
        if isinstance(event, h2.events.ConnectionTerminated):
            self.closed = True
        elif isinstance(event, h2.events.RemoteSettingsChanged):
            self.settings_received = True
        elif response is None:
            return
        elif isinstance(event, (h2.events.ResponseReceived, h2.events.TrailersReceived)):
            response.headers.update(dict(event.headers))
        elif isinstance(event, h2.events.DataReceived):
            response.data += event.data
            self.h2.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
        elif isinstance(event, h2.events.StreamEnded):
            response.ended = True
        elif isinstance(event, h2.events.StreamReset):
            response.reset = True

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> Connection:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
