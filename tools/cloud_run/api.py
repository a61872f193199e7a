"""The Admin API's HTTP side: the subset of Cloud Run Admin API v1 that a release uses, under
its real paths, with Google's error shape. Every request needs `Authorization: Bearer TOKEN`
with an access token that this run's /token granted (tokens.py) to the holder of the key file
that only the starting user can read: anyone else on the machine gets 401, since what this API
runs, it runs as root's child. The token never reaches a log.

  GET  /apis/serving.knative.dev/v1/namespaces/PROJECT/services              list
  POST /apis/serving.knative.dev/v1/namespaces/PROJECT/services[?dryRun=all] create
  GET  /apis/serving.knative.dev/v1/namespaces/PROJECT/services/NAME         get
  PUT  /apis/serving.knative.dev/v1/namespaces/PROJECT/services/NAME[?dryRun=all]  replaceService
  GET  /apis/serving.knative.dev/v1/namespaces/PROJECT/revisions   list (labelSelector:
       serving.knative.dev/service=NAME)
  GET  /apis/serving.knative.dev/v1/namespaces/PROJECT/revisions/NAME
  POST /token   the key file's token_uri (tokens.py): a signed assertion, no Authorization
"""

from __future__ import annotations

import http.server
import json
import re
import urllib.parse

from tools.cloud_run.controller import Controller
from tools.cloud_run.errors import ApiError
from tools.cloud_run.tokens import TokenIssuer

_PREFIX = r"^/apis/serving\.knative\.dev/v1/namespaces/(?P<project>[a-z0-9-]+)"
_SERVICES = re.compile(_PREFIX + r"/services/?$")
_SERVICE = re.compile(_PREFIX + r"/services/(?P<name>[^/]+)$")
_REVISIONS = re.compile(_PREFIX + r"/revisions/?$")
_REVISION = re.compile(_PREFIX + r"/revisions/(?P<name>[^/]+)$")
_SERVICE_SELECTOR = re.compile(r"^serving\.knative\.dev/service=(?P<name>[a-z0-9-]+)$")
_MAX_BODY_BYTES = 1 << 20
# Google's token endpoint's stand-in (tokens.py): a key file's token_uri.
TOKEN_PATH = "/token"
_UNAUTHENTICATED = (
    "Request is missing required authentication credential. Expected OAuth 2 access token, "
    "login cookie or other valid authentication credential."
)


def _dry_run(query: dict[str, list[str]]) -> bool:
    values = query.get("dryRun", [])
    if values and values != ["all"]:
        raise ApiError(400, "dryRun: the supported value is 'all'.")
    return bool(values)


class Handler(http.server.BaseHTTPRequestHandler):
    controller: Controller  # set on a subclass by make_server
    issuer: TokenIssuer  # likewise
    protocol_version = "HTTP/1.1"

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        # One line per request, no headers (the token is one).
        print(f"api: {self.command} {self.path} {code}", flush=True)

    def do_GET(self) -> None:
        self._answer(self._get)

    def do_PUT(self) -> None:
        self._answer(self._put)

    def do_POST(self) -> None:
        self._answer(self._post)

    def do_DELETE(self) -> None:
        self._answer(self._unsupported)

    def do_PATCH(self) -> None:
        self._answer(self._unsupported)

    def _answer(self, method) -> None:
        path, _, query_string = self.path.partition("?")
        query = urllib.parse.parse_qs(query_string)
        try:
            if path != TOKEN_PATH:  # a client fetches its token there before it has one
                self._authenticate()
            code, body = 200, json.dumps(method(path, query)).encode()
        except ApiError as error:
            code, body = error.code, error.body()
        except (AttributeError, KeyError, TypeError) as error:
            # A document whose parts have the wrong JSON types (a list where an object goes).
            malformed = ApiError(400, f"The Service document is malformed: {error!r}.")
            code, body = malformed.code, malformed.body()
        # The body is read (or refused) before answering, so the connection stays usable.
        self.send_response(code)
        self.send_header("Content-Type", "application/json; charset=UTF-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _authenticate(self) -> None:
        scheme, _, token = (self.headers.get("Authorization") or "").partition(" ")
        if scheme.lower() != "bearer" or not self.issuer.accepts(token.strip()):
            self._drain()
            raise ApiError(401, _UNAUTHENTICATED)

    def _length(self) -> int:
        try:
            return int(self.headers.get("Content-Length") or 0)
        except ValueError:
            self.close_connection = True
            raise ApiError(400, "Content-Length is not a number.") from None

    def _drain(self) -> None:
        length = self._length()
        if 0 < length <= _MAX_BODY_BYTES:
            self.rfile.read(length)
        elif length:
            self.close_connection = True

    def _raw_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding"):
            self.close_connection = True
            raise ApiError(411, "Send the body with a Content-Length.")
        length = self._length()
        if length > _MAX_BODY_BYTES:
            self.close_connection = True
            raise ApiError(413, f"The request body is larger than {_MAX_BODY_BYTES} bytes.")
        return self.rfile.read(length)

    def _body(self) -> object:
        raw = self._raw_body()
        try:
            return json.loads(raw or b"null")
        except ValueError as error:
            raise ApiError(400, f"Invalid JSON payload received. {error}") from None

    def _get(self, path: str, query: dict[str, list[str]]) -> dict:
        if match := _SERVICE.match(path):
            return self.controller.get(match["project"], match["name"])
        if match := _SERVICES.match(path):
            return self.controller.list_services(match["project"])
        if match := _REVISION.match(path):
            return self.controller.revision(match["project"], match["name"])
        if match := _REVISIONS.match(path):
            service = None
            if selector := query.get("labelSelector"):
                selected = _SERVICE_SELECTOR.match(selector[0])
                if selected is None:
                    raise ApiError(400, "labelSelector: only serving.knative.dev/service=NAME.")
                service = selected["name"]
            return self.controller.list_revisions(match["project"], service)
        raise ApiError(404, f"The requested URL {path} was not found on this server.")

    def _put(self, path: str, query: dict[str, list[str]]) -> dict:
        match = _SERVICE.match(path)
        if match is None:
            self._drain()
            raise ApiError(404, f"The requested URL {path} was not found on this server.")
        document = self._body()
        return self.controller.replace(match["project"], match["name"], document, _dry_run(query))

    def _post(self, path: str, query: dict[str, list[str]]) -> dict:
        if path == TOKEN_PATH:
            return self.issuer.grant(self._raw_body())
        match = _SERVICES.match(path)
        if match is None:
            self._drain()
            raise ApiError(404, f"The requested URL {path} was not found on this server.")
        document = self._body()
        return self.controller.create(match["project"], document, _dry_run(query))

    def _unsupported(self, path: str, query: dict[str, list[str]]) -> dict:
        self._drain()
        raise ApiError(405, f"{self.command} is not served by the local Cloud Run.")


def make_server(
    controller: Controller, port: int
) -> tuple[http.server.ThreadingHTTPServer, TokenIssuer]:
    """The API's server on 127.0.0.1:`port` and the issuer of its tokens, whose token_uri
    names the port it got (0 picks any free one)."""
    handler = type("BoundHandler", (Handler,), {"controller": controller})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", port), handler)
    server.daemon_threads = True
    handler.issuer = TokenIssuer(f"http://127.0.0.1:{server.server_address[1]}{TOKEN_PATH}")
    return server, handler.issuer
