"""An HTTP proxy on loopback in front of a registry that breaks chosen requests the ways real
networks and registries do: 503, 429 with Retry-After, 416 (a registry that lost track of an
upload), 403 DENIED (a repository the registry refuses us), a connection reset before the
request reaches the registry, a reset after it did (the client never learns that it worked),
a registry that does not mount blobs across repositories ("no mount": the request goes on
without its `mount` and `from`, so the registry opens an upload session, 202, instead), and a
registry's answer passed on with a malformed `Range` header ("bad range"), and a redirect
to the request's own URL ("redirect loop")."""

from __future__ import annotations

import http.client
import http.server
import json
import socket
import struct
import threading
import urllib.parse
from collections.abc import Callable

FAULTS = (
    "503",
    "429",
    "416",
    "403",
    "reset before",
    "reset after",
    "no mount",
    "bad range",
    "redirect loop",
    "oci subject",
    "other oci subject",
)
DENIED = (
    b'{"errors": [{"code": "DENIED", "message": "requested access to the resource is denied"}]}'
)


class FlakyProxy:
    def __init__(self, upstream: str, choose: Callable[[int, str, str], str | None]) -> None:
        """`choose(number, method, path)` names the fault (one of FAULTS) for each request, by
        its number (from 1), or None to pass it on."""
        self.upstream, self.choose = upstream, choose
        self.count = 0
        self.injected: list[tuple[int, str, str]] = []  # (number, fault, "METHOD path")
        self._lock = threading.Lock()
        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.host = f"127.0.0.1:{self._server.server_address[1]}"
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def _handler(self) -> type[http.server.BaseHTTPRequestHandler]:
        proxy = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def _reset(self) -> None:
                # SO_LINGER 0: close() sends RST, as a dropped connection does.
                self.connection.setsockopt(
                    socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0)
                )
                self.connection.close()
                self.close_connection = True

            def _proxy(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with proxy._lock:
                    proxy.count += 1
                    number = proxy.count
                fault = proxy.choose(number, self.command, self.path)
                if fault:
                    proxy.injected.append((number, fault, f"{self.command} {self.path}"))
                if fault in ("503", "429", "416", "403"):
                    body = DENIED if fault == "403" else b""
                    self.send_response(int(fault))
                    if fault == "429":
                        self.send_header("Retry-After", "1")
                    if body:
                        self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    if self.command != "HEAD":
                        self.wfile.write(body)
                    return
                if fault == "reset before":
                    self._reset()
                    return
                if fault == "redirect loop":
                    self.send_response(307)
                    self.send_header("Location", self.path)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                upstream = http.client.HTTPConnection(proxy.upstream, timeout=60)
                headers = {k: v for k, v in self.headers.items() if k.lower() != "connection"}
                path = self.path
                if fault == "no mount":
                    parts = urllib.parse.urlsplit(path)
                    query = [
                        (k, v)
                        for k, v in urllib.parse.parse_qsl(parts.query)
                        if k not in ("mount", "from")
                    ]
                    path = parts._replace(query=urllib.parse.urlencode(query)).geturl()
                upstream.request(self.command, path, body=body, headers=headers)
                response = upstream.getresponse()
                data = response.read()
                upstream.close()
                if fault == "reset after":
                    self._reset()
                    return
                self.send_response(response.status)
                for name, value in response.getheaders():
                    if name.lower() not in ("connection", "transfer-encoding", "content-length"):
                        bad_range = fault == "bad range" and name.lower() == "range"
                        self.send_header(name, "bytes=garbage" if bad_range else value)
                manifest_put = self.command == "PUT" and "/manifests/" in self.path
                if fault in ("oci subject", "other oci subject") and manifest_put:
                    subject = json.loads(body).get("subject", {}).get("digest")
                    if subject and response.status == 201:
                        other = "sha256:" + "0" * 64
                        self.send_header(
                            "OCI-Subject", subject if fault == "oci subject" else other
                        )
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(data)

            do_GET = do_HEAD = do_POST = do_PUT = do_PATCH = _proxy

        return Handler
