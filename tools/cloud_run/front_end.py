"""The h2c front end: one loopback port for every service, routed by `:authority` as Cloud
Run's front end routes by host. A service's host splits connections by the route's percents;
a tag's host goes to its revision only.

Routing is per connection: the front end reads the client's connection preface and first
HEADERS frame, decodes its `:authority` (HPACK), picks a revision, then replays those bytes to
the revision's instance. Every later request on that connection goes to the same revision (a
gRPC channel keeps its connection). A host that nothing serves gets an HTTP/2 answer of its
own: 404 for an unknown host, 503 when its revision has no instance, as Cloud Run answers.

A public service's connection is then relayed untouched both ways. A private one's requests
pass Cloud Run's invoker check one by one (request_gate.py, invoker_check.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import struct
import threading
from collections.abc import Callable

import h2.config
import h2.connection
import h2.events
import hpack

from tools.cloud_run import request_gate
from tools.cloud_run.controller import Controller
from tools.cloud_run.invoker_check import Verifier
from tools.cloud_run.request_gate import ProtocolError, RequestGate, read_frame
from tools.cloud_run.routes import Backend

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
_HEADERS, _SETTINGS, _CONTINUATION = 0x1, 0x4, 0x9
_ACK, _END_HEADERS, _PADDED, _PRIORITY = 0x1, 0x4, 0x8, 0x20
# The server's connection preface: an empty SETTINGS frame. A gRPC client waits for it before
# it sends a request, so the front end sends its own before it knows the instance.
_EMPTY_SETTINGS = struct.pack(">BHBBI", 0, 0, _SETTINGS, 0, 0)
# What the front end reads before it knows where a connection goes, at most.
_MAX_PREAMBLE_BYTES = 1 << 20
_PREAMBLE_TIMEOUT_SECONDS = 10
_RELAY_CHUNK = 1 << 16


class NotHttp2(Exception):
    """The client did not open an HTTP/2 (prior knowledge) connection."""


class Preamble:
    """What the client sent before its first request's headers were complete, to replay to
    the chosen instance, less the client's acknowledgement of the front end's own SETTINGS:
    the instance never sent those, so it must not see their ACK."""

    def __init__(self) -> None:
        self.data = bytearray()
        self.ack_pending = True

    async def frame(self, reader: asyncio.StreamReader) -> tuple[int, int, bytes]:
        header = await reader.readexactly(9)
        length_high, length_low, kind, flags, _ = struct.unpack(">BHBBI", header)
        length = (length_high << 16) | length_low
        if len(self.data) + 9 + length > _MAX_PREAMBLE_BYTES:
            raise NotHttp2("too much before the first request's headers")
        payload = await reader.readexactly(length)
        if self.ack_pending and kind == _SETTINGS and flags & _ACK:
            self.ack_pending = False
        else:
            self.data += header + payload
        return kind, flags, payload


async def read_authority(reader: asyncio.StreamReader, preamble: Preamble) -> str:
    """The first request's :authority (or host); `preamble` holds all read."""
    preface = await reader.readexactly(len(PREFACE))
    preamble.data += preface
    if preface != PREFACE:
        raise NotHttp2("no HTTP/2 connection preface (the front end speaks h2c only)")
    while True:
        kind, flags, payload = await preamble.frame(reader)
        if kind != _HEADERS:
            continue
        if flags & _PADDED:
            payload = payload[1 : len(payload) - payload[0]]
        if flags & _PRIORITY:
            payload = payload[5:]
        block = bytearray(payload)
        while not flags & _END_HEADERS:
            kind, flags, payload = await preamble.frame(reader)
            if kind != _CONTINUATION:
                raise NotHttp2("HEADERS without its CONTINUATION")
            block += payload
        # Raw: a header may hold any bytes, and one that is not UTF-8 must not end the
        # connection with no answer.
        headers = dict(hpack.Decoder().decode(bytes(block), raw=True))
        authority = headers.get(b":authority") or headers.get(b"host")
        if not authority:
            raise NotHttp2("the first request has no :authority")
        return bytes(authority).decode("ascii", errors="replace")


def host_of(authority: str) -> str:
    return authority.rsplit(":", 1)[0] if authority.count(":") == 1 else authority


def _refusal(preamble: bytes, status: int, text: str) -> bytes:
    """An HTTP/2 server's answer to the first request: `status` and a one-line body."""
    connection = h2.connection.H2Connection(h2.config.H2Configuration(client_side=False))
    connection.initiate_connection()
    for event in connection.receive_data(preamble):
        if isinstance(event, h2.events.RequestReceived):
            body = (text + "\n").encode()
            connection.send_headers(
                event.stream_id,
                [
                    (":status", str(status)),
                    ("content-type", "text/plain; charset=utf-8"),
                    ("content-length", str(len(body))),
                ],
            )
            connection.send_data(event.stream_id, body, end_stream=True)
            break
    connection.close_connection()
    return connection.data_to_send()


async def _relay(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, preamble: Preamble | None = None
) -> None:
    """Copies until end of stream; with `preamble`, first frame by frame until the ACK of the
    front end's SETTINGS has been dropped (a client may send it after its first request)."""
    try:
        while preamble is not None and preamble.ack_pending:
            before = len(preamble.data)
            await preamble.frame(reader)
            writer.write(preamble.data[before:])
            del preamble.data[before:]
            await writer.drain()
        while data := await reader.read(_RELAY_CHUNK):
            writer.write(data)
            await writer.drain()
    except (ConnectionError, asyncio.IncompleteReadError):
        pass
    finally:
        with contextlib.suppress(OSError, RuntimeError):
            writer.write_eof()


async def _gate(
    reader: asyncio.StreamReader,
    upstream: asyncio.StreamWriter,
    client: asyncio.StreamWriter,
    preamble: Preamble,
    gate: RequestGate,
) -> None:
    """The client's frames through `gate`: first those of the preamble, then the rest. It
    waits for the client to read the gate's own answers too: a client that sends refused
    requests and never reads would otherwise grow the front end's buffer without end."""
    try:
        upstream.write(PREFACE)
        for kind, flags, stream_id, payload in request_gate.split_frames(
            bytes(preamble.data[len(PREFACE) :])
        ):
            upstream.write(gate.relay(kind, flags, stream_id, payload))
        preamble.data.clear()
        while True:
            kind, flags, stream_id, payload = await read_frame(reader)
            if preamble.ack_pending and kind == request_gate.SETTINGS and flags & _ACK:
                preamble.ack_pending = False  # the ACK of the front end's own SETTINGS
                continue
            upstream.write(gate.relay(kind, flags, stream_id, payload))
            await upstream.drain()
            await client.drain()
    except ProtocolError as error:
        gate.log(f"connection dropped: {error}")
    except (ConnectionError, asyncio.IncompleteReadError):
        pass
    finally:
        with contextlib.suppress(OSError, RuntimeError):
            upstream.write_eof()


async def _frames(
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    to_client: request_gate.ToClient,
    gate: RequestGate,
) -> None:
    """The instance's frames to the client, whole, so that the gate's own answers can go
    between them."""
    try:
        while True:
            kind, flags, stream_id, payload = await read_frame(reader)
            gate.instance_frame(kind, flags, stream_id, payload)
            to_client.instance(kind, flags, stream_id, payload)
            await writer.drain()
    except (ConnectionError, asyncio.IncompleteReadError):
        pass
    finally:
        to_client.closed = True
        with contextlib.suppress(OSError, RuntimeError):
            writer.write_eof()


def _no_key_yet(_token: str, _audiences: object) -> dict:
    raise ValueError("the front end has no key to check ID tokens with yet")


def _print_line(line: str) -> None:
    print(f"front end: {line}", flush=True)


class FrontEnd:
    def __init__(self, controller: Controller, log: Callable[[str], None] = _print_line) -> None:
        self.controller = controller
        self.log = log
        self.port = 0
        # Checks a private service's ID tokens with the local Cloud Run's key (main.py sets it
        # once the API has made the key, before any service exists).
        self.verify: Verifier = _no_key_yet

    def choose(self, host: str) -> Backend | None:
        backends = self.controller.backends(host)
        if not backends:
            return None
        return random.choices(backends, weights=[b.percent for b in backends])[0]

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        preamble = Preamble()
        writer.write(_EMPTY_SETTINGS)
        try:
            authority = await asyncio.wait_for(
                read_authority(reader, preamble), _PREAMBLE_TIMEOUT_SECONDS
            )
        except (NotHttp2, asyncio.IncompleteReadError, TimeoutError, hpack.HPACKError) as error:
            self.log(f"connection dropped: {error or type(error).__name__}")
            writer.close()
            return
        host = host_of(authority).lower()
        backend = self.choose(host)
        if backend is None:
            known = self.controller.knows(host)
            status, text = (
                (503, f"no instance serves {host}")
                if known
                else (404, f"no service or tag at {host}")
            )
            self.log(f"{host}: {status}")
            writer.write(_refusal(bytes(preamble.data), status, text))
            with contextlib.suppress(ConnectionError):
                await writer.drain()
            writer.close()
            return
        try:
            upstream_reader, upstream_writer = await asyncio.open_connection(
                "127.0.0.1", backend.port
            )
        except OSError as error:
            self.log(f"{host} -> {backend.revision}: {error}")
            writer.write(
                _refusal(bytes(preamble.data), 503, f"{backend.revision} is not answering")
            )
            writer.close()
            return
        self.log(f"{host} -> {backend.revision}")
        if backend.access.public:
            upstream_writer.write(bytes(preamble.data))
            preamble.data.clear()
            await asyncio.gather(
                _relay(reader, upstream_writer, preamble), _relay(upstream_reader, writer)
            )
        else:
            to_client = request_gate.ToClient(writer.write)
            gate = RequestGate(
                backend.access,
                # The URL the connection was routed by: a later request's :authority may name
                # another host, whose tokens must not open this service.
                "http://" + authority,
                self.verify,
                to_client.own,
                lambda line: self.log(f"{host}: {line}"),
            )
            await asyncio.gather(
                _gate(reader, upstream_writer, writer, preamble, gate),
                _frames(upstream_reader, writer, to_client, gate),
            )
        upstream_writer.close()
        writer.close()

    async def serve(self, port: int, listening: threading.Event) -> None:
        """Serves forever; sets `listening` once `self.port` is the port it listens on."""
        server = await asyncio.start_server(self._handle, "127.0.0.1", port)
        self.port = server.sockets[0].getsockname()[1]
        listening.set()
        async with server:
            await server.serve_forever()
