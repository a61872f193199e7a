"""What Cloud Run's metadata server gives an instance, and no more: the answer google-auth's
detection looks for, the service account's description (which google-auth reads before it asks
for a token), and an ID token for any audience (`identity?audience=URL`), signed by the
local Cloud Run's own key (tokens.py) so that its front end can verify it.

google-auth finds it through `GCE_METADATA_HOST` (the token) and `GCE_METADATA_IP` (its
detection ping). As Google's, it answers only requests that carry `Metadata-Flavor: Google`
(403 otherwise): a page that tricks a browser or a proxy into a plain GET gets no token. It
listens on loopback only, and never logs a token or a header.
"""

from __future__ import annotations

import http.server
import json
import threading
import urllib.parse

from tools.cloud_run.tokens import TokenIssuer

FLAVOR_HEADER = "Metadata-Flavor"
FLAVOR = "Google"
ACCOUNT_PATH = "/computeMetadata/v1/instance/service-accounts/default/"
IDENTITY_PATH = ACCOUNT_PATH + "identity"
EMAIL_PATH = ACCOUNT_PATH + "email"
_TEXT, _JSON = "application/text", "application/json"
# The identity every instance runs as: Cloud Run's default compute service account's shape.
INSTANCE_EMAIL = "instance@local-cloud-run.iam.gserviceaccount.com"


class MetadataServer:
    """A loopback HTTP server that mints ID tokens with `issuer`'s key."""

    def __init__(self, issuer: TokenIssuer, port: int = 0) -> None:
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                status, body, kind = server.answer(self.path, self.headers.get(FLAVOR_HEADER))
                encoded = body.encode()
                self.send_response(status)
                self.send_header(FLAVOR_HEADER, FLAVOR)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(encoded)))
                self.end_headers()
                self.wfile.write(encoded)

            def log_message(self, format: str, *args: object) -> None:
                """Silent: the request line carries the audience, and nothing here needs it."""

        self._issuer = issuer
        self._http = http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self._http.daemon_threads = True
        self._thread = threading.Thread(target=self._http.serve_forever, daemon=True)

    @property
    def host(self) -> str:
        """`host:port`, the value of GCE_METADATA_HOST and GCE_METADATA_IP."""
        address, port = self._http.server_address[:2]
        return f"{address}:{port}"

    def answer(self, path: str, flavor: str | None) -> tuple[int, str, str]:
        """The status, body and content type for a GET of `path`."""
        if flavor != FLAVOR:
            return 403, f"Missing {FLAVOR_HEADER}: {FLAVOR} header\n", _TEXT
        url = urllib.parse.urlsplit(path)
        query = urllib.parse.parse_qs(url.query)
        if url.path in ("", "/"):
            return 200, "computeMetadata/\n", _TEXT
        if url.path == ACCOUNT_PATH and query.get("recursive") == ["true"]:
            account = {"aliases": ["default"], "email": INSTANCE_EMAIL, "scopes": []}
            return 200, json.dumps(account), _JSON
        if url.path == EMAIL_PATH:
            return 200, INSTANCE_EMAIL, _TEXT
        if url.path == IDENTITY_PATH:
            audience = query.get("audience", [""])[0]
            if not audience:
                return 400, "non-empty audience parameter required\n", _TEXT
            return 200, self._issuer.id_token(audience, INSTANCE_EMAIL), _TEXT
        return 404, "Not Found\n", _TEXT

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._http.shutdown()
        self._http.server_close()
