"""A registry on 127.0.0.1 that serves one image (oci_fixture.Image) honestly, or lies, stalls
or redirects the way a hostile registry would, for the pull's tests (registry_pull_test.py).

Each server has a port of its own (two of them are two origins) and one mode, and records
every request (path and headers) so that a test can say what reached which origin:

- `honest`: the image as it is;
- `wrong_manifest`: another manifest than the digest names; `wrong_blob`: each blob with its
  first byte changed (same size);
- `short_blob`: a blob's Content-Length, then half the bytes and the connection closed;
  `oversized_blob`: the blob and 4 KiB more;
- `stall_blob`: half a blob, then nothing; `drip_blob`: a blob one byte every 50 ms;
  `drip_headers`: an answer whose headers come one byte every 50 ms and never end;
- `redirect_blobs`: every blob request answered 307 to `redirect_to` + the same path (another
  loopback port, a non-loopback http host, or this server itself: a loop);
- `unauthorized`: 401 with a Bearer challenge, for everything;
- `huge_manifest`: a manifest that never ends (chunked).
"""

from __future__ import annotations

import http.server
import threading

from tests.cloud_run.oci_fixture import MANIFEST_TYPE, Image

MODES = (
    "honest",
    "wrong_manifest",
    "wrong_blob",
    "short_blob",
    "oversized_blob",
    "stall_blob",
    "drip_blob",
    "drip_headers",
    "redirect_blobs",
    "unauthorized",
    "huge_manifest",
)
REPOSITORY = "kit/app"
# An endless answer stops after this much, so that a pull without a cap fails its test
# rather than filling the machine.
_ENDLESS_SAFETY_LIMIT = 256 << 20
_STALL_SAFETY_SECONDS = 120


class HostileRegistry:
    def __init__(self, image: Image, mode: str = "honest", redirect_to: str | None = None) -> None:
        if mode not in MODES:
            raise ValueError(f"unknown mode {mode!r}")
        self.image = image
        self.mode = mode
        self.received: list[tuple[str, dict[str, str]]] = []  # (path, lower-case headers)
        self._closing = threading.Event()
        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self.host = f"127.0.0.1:{self._server.server_address[1]}"
        self.url = f"http://{self.host}"
        self.redirect_to = redirect_to or self.url
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def reference(self) -> str:
        return f"{self.host}/{REPOSITORY}@{self.image.digest}"

    def paths(self) -> list[str]:
        return [path for path, _ in self.received]

    def close(self) -> None:
        self._closing.set()  # releases a stalled answer
        self._server.shutdown()
        self._server.server_close()

    def _answer(self, handler: http.server.BaseHTTPRequestHandler) -> None:
        path = handler.path
        self.received.append((path, {k.lower(): v for k, v in handler.headers.items()}))
        prefix = f"/v2/{REPOSITORY}/"
        kind, _, digest = path.removeprefix(prefix).partition("/")
        if self.mode == "drip_headers":
            handler.close_connection = True
            handler.wfile.write(b"HTTP/1.1 200 OK\r\nX-Slow: ")
            for _ in range(int(_STALL_SAFETY_SECONDS / 0.05)):
                handler.wfile.write(b"a")
                handler.wfile.flush()
                if self._closing.wait(0.05):
                    return
        elif self.mode == "unauthorized":
            realm = f'Bearer realm="{self.url}/token",service="{self.host}"'
            _reply(handler, 401, b'{"errors":[{"code":"UNAUTHORIZED"}]}', realm)
        elif not path.startswith(prefix) or kind not in ("manifests", "blobs"):
            _reply(handler, 404, b"")
        elif kind == "manifests":
            self._manifest(handler, digest)
        elif digest not in self.image.blobs:
            _reply(handler, 404, b"")
        else:
            self._blob(handler, self.image.blobs[digest])

    def _manifest(self, handler: http.server.BaseHTTPRequestHandler, digest: str) -> None:
        if self.mode == "huge_manifest":
            handler.close_connection = True
            _headers(handler, 200, {"Transfer-Encoding": "chunked"}, MANIFEST_TYPE)
            piece = b" " * 65536
            for _ in range(_ENDLESS_SAFETY_LIMIT // len(piece)):
                handler.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece))
        elif digest != self.image.digest:
            _reply(handler, 404, b"")
        elif self.mode == "wrong_manifest":
            _reply(handler, 200, self.image.manifest + b"\n", content_type=MANIFEST_TYPE)
        else:
            _reply(handler, 200, self.image.manifest, content_type=MANIFEST_TYPE)

    def _blob(self, handler: http.server.BaseHTTPRequestHandler, data: bytes) -> None:
        half = data[: len(data) // 2]
        if self.mode == "redirect_blobs":
            handler.send_response(307)
            handler.send_header("Location", self.redirect_to + handler.path)
            handler.send_header("Content-Length", "0")
            handler.end_headers()
        elif self.mode == "wrong_blob":
            _reply(handler, 200, bytes([data[0] ^ 1]) + data[1:])
        elif self.mode == "oversized_blob":
            _reply(handler, 200, data + b"x" * 4096)
        elif self.mode in ("short_blob", "stall_blob", "drip_blob"):
            handler.close_connection = True
            _headers(handler, 200, {"Content-Length": str(len(data))})
            if self.mode == "drip_blob":
                for i in range(len(data)):
                    handler.wfile.write(data[i : i + 1])
                    handler.wfile.flush()
                    if self._closing.wait(0.05):
                        return
                return
            handler.wfile.write(half)
            handler.wfile.flush()
            if self.mode == "stall_blob":
                self._closing.wait(_STALL_SAFETY_SECONDS)
        else:
            _reply(handler, 200, data)

    def _handler(self) -> type[http.server.BaseHTTPRequestHandler]:
        registry = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                try:
                    registry._answer(self)
                except (BrokenPipeError, ConnectionResetError):
                    self.close_connection = True  # the pull hung up: what a cap does

        return Handler


def _headers(
    handler: http.server.BaseHTTPRequestHandler,
    status: int,
    headers: dict[str, str],
    content_type: str = "application/octet-stream",
) -> None:
    handler.send_response(status)
    handler.send_header("Content-Type", content_type)
    for name, value in headers.items():
        handler.send_header(name, value)
    handler.end_headers()


def _reply(
    handler: http.server.BaseHTTPRequestHandler,
    status: int,
    body: bytes,
    challenge: str | None = None,
    content_type: str = "application/octet-stream",
) -> None:
    headers = {"Content-Length": str(len(body))}
    if challenge:
        headers["WWW-Authenticate"] = challenge
    _headers(handler, status, headers, content_type)
    handler.wfile.write(body)
