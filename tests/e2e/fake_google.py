"""Stand-ins for what Google runs, on loopback: a CA for TLS, and an HTTP server that publishes
token-signing certificates and mints ID tokens for service-account keys (the `token_uri` of a
key file), signed with a key of the test's own. Counts requests and keeps the ID tokens it
issued, and lets a test choose the lifetime of each token, so tests can see caching and
refreshing: whether a client fetches a new token depends on how close the one it holds is to
its expiry, which only a test that picks lifetimes can pin down."""

from __future__ import annotations

import collections
import datetime
import http.server
import ipaddress
import json
import os
import secrets
import tempfile
import threading
import time
import urllib.parse
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID
from google.auth import crypt, jwt

ISSUER = "https://accounts.google.com"
KEY_ID = "test-key-1"
TOKEN_LIFETIME_SECONDS = 3600  # as Google's


def rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def private_pem(key: rsa.RSAPrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def certificate(
    subject: str,
    key: rsa.RSAPrivateKey,
    issuer: tuple[str, rsa.RSAPrivateKey] | None = None,
    names: tuple[str, ...] = (),
    ca: bool = False,
) -> x509.Certificate:
    now = datetime.datetime.now(datetime.UTC)
    issuer_name, issuer_key = issuer or (subject, key)
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
        .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, issuer_name)]))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if names:
        entries: list[x509.GeneralName] = []
        for name in names:
            try:
                entries.append(x509.IPAddress(ipaddress.ip_address(name)))
            except ValueError:
                entries.append(x509.DNSName(name))
        builder = builder.add_extension(x509.SubjectAlternativeName(entries), critical=False)
    return builder.sign(issuer_key, hashes.SHA256())


class Pki:
    """A CA and a server certificate for localhost, written as PEM files into `directory`, by
    default a new one in the test's temp dir."""

    def __init__(self, directory: Path | None = None, ca_name: str = "kit test CA") -> None:
        if directory is None:
            directory = Path(tempfile.mkdtemp(dir=os.environ.get("TEST_TMPDIR")))
        ca_key, server_key = rsa_key(), rsa_key()
        ca = certificate(ca_name, ca_key, ca=True)
        server = certificate(
            "localhost", server_key, issuer=(ca_name, ca_key), names=("localhost", "127.0.0.1")
        )
        directory.mkdir(parents=True, exist_ok=True)
        self.ca_cert = directory / "ca.pem"
        self.server_cert = directory / "server.pem"
        self.server_key = directory / "server.key"
        self.ca_cert.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
        self.server_cert.write_bytes(server.public_bytes(serialization.Encoding.PEM))
        self.server_key.write_bytes(private_pem(server_key))


class FakeGoogle:
    """`/certs` (as www.googleapis.com/oauth2/v1/certs) and `/token` (a service account's
    token_uri, answering JWT-bearer grants with an ID token for the asked audience, or, for a
    grant with scopes, the access token `access_token`).

    `hits` counts requests per path; `id_tokens` holds the ID tokens `/token` issued, in order.
    """

    def __init__(self) -> None:
        self.signing_key = rsa_key()
        self.signer = crypt.RSASigner.from_string(private_pem(self.signing_key), key_id=KEY_ID)
        cert = certificate("fake google", self.signing_key)
        self.certs = {KEY_ID: cert.public_bytes(serialization.Encoding.PEM).decode()}
        self.access_token = "ya29.kit-test-" + secrets.token_hex(16)
        self.hits = {"/certs": 0, "/token": 0}
        self.id_tokens: list[str] = []
        self._lifetimes: collections.deque[int] = collections.deque()
        self._lock = threading.Lock()  # requests are answered on several threads
        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def queue_token_lifetimes(self, *seconds: int) -> None:
        """The next tokens `/token` issues expire these many seconds after issue, one each in
        order (negative: already expired); after them, TOKEN_LIFETIME_SECONDS."""
        with self._lock:
            self._lifetimes.extend(seconds)

    def _count(self, path: str) -> int | None:
        """Counts a request; for `/token`, the lifetime of the token to issue."""
        with self._lock:
            self.hits[path] += 1
            if path == "/token" and self._lifetimes:
                return self._lifetimes.popleft()
            return None

    def id_token(
        self,
        audience: str,
        email: str = "caller@example.iam.gserviceaccount.com",
        lifetime: int | None = None,
        signer: crypt.Signer | None = None,
        **claims: object,
    ) -> str:
        now = int(time.time())
        payload = {
            "iss": ISSUER,
            "aud": audience,
            "email": email,
            "email_verified": True,
            "sub": "1234567890",
            "iat": now,
            "exp": now + (TOKEN_LIFETIME_SECONDS if lifetime is None else lifetime),
            **claims,
        }
        return jwt.encode(signer or self.signer, payload).decode()

    def service_account_file(self, directory: Path, email: str) -> Path:
        """A key file as `gcloud iam service-accounts keys create` writes, pointing here."""
        key = rsa_key()
        info = {
            "type": "service_account",
            "project_id": "kit-test",
            "private_key_id": "sa-key-1",
            "private_key": private_pem(key).decode(),
            "client_email": email,
            "client_id": "1",
            "token_uri": f"{self.url}/token",
        }
        path = directory / "service_account.json"
        path.write_text(json.dumps(info), encoding="utf-8")
        return path

    def _handler(self) -> type[http.server.BaseHTTPRequestHandler]:
        fake = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def _reply(self, body: dict, headers: dict[str, str] | None = None) -> None:
                data = json.dumps(body).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for name, value in (headers or {}).items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:
                fake._count("/certs")
                self._reply(fake.certs, {"Cache-Control": "public, max-age=3600"})

            def do_POST(self) -> None:
                lifetime = fake._count("/token")
                form = urllib.parse.parse_qs(
                    self.rfile.read(int(self.headers["Content-Length"])).decode()
                )
                grant = jwt.decode(form["assertion"][0], verify=False)
                if "target_audience" not in grant:
                    self._reply(
                        {
                            "access_token": fake.access_token,
                            "expires_in": TOKEN_LIFETIME_SECONDS if lifetime is None else lifetime,
                            "token_type": "Bearer",
                        }
                    )
                    return
                token = fake.id_token(
                    grant["target_audience"], email=grant["iss"], lifetime=lifetime
                )
                with fake._lock:
                    fake.id_tokens.append(token)
                self._reply({"id_token": token})

        return Handler
