"""A registry token service on loopback for the Bearer flow: docker-registry configured with
`auth: token` sends clients here (its `realm`), and trusts tokens signed by this service's
certificate (its `rootcertbundle`). Answers with a token for every asked repository scope (a
blob mount asks for the source's too) when the caller's basic credentials match, or to anyone
when `allow_anonymous`; or, with `html`, answers every request 200 with an HTML page, as a
login portal in front of a token service does."""

from __future__ import annotations

import base64
import http.server
import json
import secrets
import threading
import time
import urllib.parse
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from google.auth import crypt, jwt

from tests.e2e.fake_google import certificate, private_pem, rsa_key

SERVICE = "kit-registry"
ISSUER = "kit-token-issuer"
HTML_PAGE = b"<html><body>Sign in to continue</body></html>"


class TokenService:
    def __init__(
        self,
        directory: Path,
        users: dict[str, str],
        allow_anonymous: bool = False,
        html: bool = False,
    ) -> None:
        key = rsa_key()
        issuer = certificate(ISSUER, key, ca=True)
        directory.mkdir(parents=True, exist_ok=True)
        self.certificate_file = directory / "token-issuer.pem"
        self.certificate_file.write_bytes(issuer.public_bytes(serialization.Encoding.PEM))
        self._signer = crypt.RSASigner.from_string(private_pem(key))
        self._x5c = base64.b64encode(issuer.public_bytes(serialization.Encoding.DER)).decode()
        self.users, self.allow_anonymous, self.html = users, allow_anonymous, html
        self.requests: list[dict] = []  # what each token request carried
        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.realm = f"http://127.0.0.1:{self._server.server_address[1]}/token"
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def token(self, repository: str, actions: tuple[str, ...] = ("pull", "push")) -> str:
        return self.token_for([(repository, actions)])

    def token_for(self, scopes: list[tuple[str, tuple[str, ...]]]) -> str:
        """A token granting each (repository, actions)."""
        now = int(time.time())
        claims = {
            "iss": ISSUER,
            "sub": "kit-test",
            "aud": SERVICE,
            "iat": now,
            "nbf": now - 10,
            "exp": now + 300,
            "jti": secrets.token_hex(8),
            "access": [
                {"type": "repository", "name": repository, "actions": list(actions)}
                for repository, actions in scopes
            ],
        }
        return jwt.encode(self._signer, claims, header={"x5c": [self._x5c]}).decode()

    def _handler(self) -> type[http.server.BaseHTTPRequestHandler]:
        service = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                query = urllib.parse.parse_qs(urllib.parse.urlsplit(self.path).query)
                user = None
                authorization = self.headers.get("Authorization", "")
                if authorization.startswith("Basic "):
                    pair = base64.b64decode(authorization[len("Basic ") :]).decode()
                    user, _, password = pair.partition(":")
                    if service.users.get(user) != password:
                        user = "rejected"
                service.requests.append({"user": user, **query})
                if service.html:
                    self._answer(200, "text/html", HTML_PAGE)
                    return
                if user == "rejected" or (user is None and not service.allow_anonymous):
                    self.send_response(401)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                scopes = []
                for scope in query["scope"]:
                    _, repository, actions = scope.split(":")
                    scopes.append((repository, tuple(actions.split(","))))
                body = json.dumps({"token": service.token_for(scopes)}).encode()
                self._answer(200, "application/json", body)

            def _answer(self, status: int, content_type: str, body: bytes) -> None:
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        return Handler
