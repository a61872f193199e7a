"""A hostile or compromised registry on loopback, for the push's security tests.

Each `Origin` is an HTTP/1.1 server on 127.0.0.1 with a port of its own (so two of them are two
origins), which records every request it receives (method, target, headers, body) before its
test's `answer` function answers it: passed on to a real registry (registry_server.py) with its
upload `Location`s pointed at another origin, a redirect to another origin, a body that never
ends, an answer that drips one byte at a time, or, as an HTTP proxy the push is told to use, a
record of where the push tried to go. The records are what the tests assert on: which origin
received credentials, and which received the layer bytes.
"""

from __future__ import annotations

import dataclasses
import http.client
import http.server
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterator

# An "endless" body stops after this many bytes, so that a client without a cap (the code these
# tests were written against) fails its assertion without taking the machine's memory.
ENDLESS_SAFETY_LIMIT = 512 * 1024 * 1024
_PIECE = b"0" * 65536


@dataclasses.dataclass(frozen=True)
class Received:
    """One request as the origin received it."""

    method: str
    target: str  # a path, an absolute URL (sent to a proxy) or host:port (CONNECT)
    headers: dict[str, str]  # names in lower case
    body: bytes

    @property
    def authorization(self) -> str | None:
        return self.headers.get("authorization")


Answer = Callable[[http.server.BaseHTTPRequestHandler, Received], None]


class Origin:
    """An HTTP server on 127.0.0.1 that records each request, then hands it to `answer`."""

    def __init__(self, answer: Answer) -> None:
        self.answer = answer
        self.received: list[Received] = []
        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self.host = f"127.0.0.1:{self._server.server_address[1]}"
        self.url = f"http://{self.host}"
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def authorizations(self) -> list[str]:
        """The Authorization header of every request that carried one."""
        return [r.authorization for r in self.received if r.authorization is not None]

    def _handler(self) -> type[http.server.BaseHTTPRequestHandler]:
        origin = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def _record(self) -> None:
                body = b""
                if self.command not in ("CONNECT", "HEAD", "GET"):
                    body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                request = Received(
                    self.command,
                    self.path,
                    {name.lower(): value for name, value in self.headers.items()},
                    body,
                )
                origin.received.append(request)
                try:
                    origin.answer(self, request)
                except (BrokenPipeError, ConnectionResetError):
                    self.close_connection = True  # the client hung up: what a cap does

            do_GET = do_HEAD = do_POST = do_PUT = do_PATCH = do_CONNECT = _record

        return Handler


def reply(
    handler: http.server.BaseHTTPRequestHandler,
    status: int,
    headers: dict[str, str] | None = None,
    body: bytes = b"",
) -> None:
    """A whole answer with a Content-Length."""
    handler.send_response(status)
    for name, value in (headers or {}).items():
        handler.send_header(name, value)
    handler.send_header("Content-Length", str(len(body)))
    handler.end_headers()
    if handler.command != "HEAD":
        handler.wfile.write(body)


def forward(
    handler: http.server.BaseHTTPRequestHandler,
    request: Received,
    upstream: str,
    authorization: str | None = None,
    location: Callable[[str], str] = lambda value: value,
) -> None:
    """Passes the request on to the registry at `upstream` (host:port) with its Host header as
    sent, so the registry's Locations name this origin; with `authorization`, in place of the
    client's (a storage host that accepts what the registry handed it); the answer's Location
    rewritten by `location`."""
    headers = {k: v for k, v in request.headers.items() if k not in ("connection",)}
    if authorization is not None:
        headers["authorization"] = authorization
    connection = http.client.HTTPConnection(upstream, timeout=60)
    connection.request(request.method, request.target, body=request.body, headers=headers)
    response = connection.getresponse()
    data = response.read()
    connection.close()
    handler.send_response(response.status)
    for name, value in response.getheaders():
        lower = name.lower()
        if lower in ("connection", "transfer-encoding", "content-length"):
            continue  # the body is sent whole below
        handler.send_header(name, location(value) if lower == "location" else value)
    length = response.getheader("Content-Length") if request.method == "HEAD" else len(data)
    handler.send_header("Content-Length", str(length or 0))
    handler.end_headers()
    if request.method != "HEAD":
        handler.wfile.write(data)


def moved_to(origin: str, scheme_relative: bool = False) -> Callable[[str], str]:
    """A Location rewriter: the same path and query at `origin` (host:port), absolute or
    scheme-relative (`//host:port/...`)."""

    def rewrite(value: str) -> str:
        parts = urllib.parse.urlsplit(value)
        prefix = f"//{origin}" if scheme_relative else f"http://{origin}"
        return prefix + parts.path + (f"?{parts.query}" if parts.query else "")

    return rewrite


def endless(
    handler: http.server.BaseHTTPRequestHandler,
    status: int,
    content_type: str = "application/json",
    content_length: int | None = None,
) -> None:
    """An answer whose body never ends (up to ENDLESS_SAFETY_LIMIT): chunked, or with a huge
    `content_length` that the bytes never reach."""
    handler.close_connection = True
    handler.send_response(status)
    handler.send_header("Content-Type", content_type)
    if content_length is None:
        handler.send_header("Transfer-Encoding", "chunked")
    else:
        handler.send_header("Content-Length", str(content_length))
    handler.end_headers()
    chunk = _PIECE if content_length is not None else b"%x\r\n%s\r\n" % (len(_PIECE), _PIECE)
    for _ in range(ENDLESS_SAFETY_LIMIT // len(_PIECE)):
        handler.wfile.write(chunk)


def drip(handler: http.server.BaseHTTPRequestHandler, data: Iterator[bytes], every: float) -> None:
    """Writes `data` one piece every `every` seconds, for as long as it lasts or the client
    listens: a registry that is slow, not down."""
    handler.close_connection = True
    for piece in data:
        handler.wfile.write(piece)
        handler.wfile.flush()
        time.sleep(every)
