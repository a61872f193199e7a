"""A stand-in for Google's OAuth token endpoint (a service-account key's `token_uri`), so that a
client using Application Default Credentials, such as the release tool, can talk to the local
Cloud Run with no Google account.

The local Cloud Run runs as root and runs any image it is told to, so its API is for the user
who started it only. At start it makes an RSA key pair and writes the private half as a
service-account key file that only that user can read (main.py). POST /token grants only a
JWT-bearer assertion signed by that key (RS256, `aud` this endpoint or Google's, not expired,
from the key's `client_email`): it answers with a random access token that the API then
accepts until it expires, or with an ID token when the assertion asks for a
`target_audience`. ID tokens, here and at the metadata endpoint (metadata.py), are signed by
the same key (RS256), so whoever holds the public half can verify them (`verify_id_token`).
"""

from __future__ import annotations

import hmac
import secrets
import threading
import time
import urllib.parse
from collections.abc import Sequence

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from google.auth import crypt, exceptions, jwt

from tools.cloud_run.errors import ApiError

JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"
LIFETIME_SECONDS = 3600  # as Google's
CLIENT_EMAIL = "deployer@local-cloud-run.iam.gserviceaccount.com"
# google-auth's service-account credentials address every assertion to Google's endpoint,
# whatever the key's token_uri; the key (new each run) is what binds an assertion to this run.
GOOGLE_TOKEN_URI = "https://oauth2.googleapis.com/token"
ID_TOKEN_ISSUER = "https://accounts.google.com"
_KEY_ID = "local-cloud-run"
_KEY_BITS = 2048
_NOT_A_JWT = "three base64url segments, header and payload JSON objects"


class TokenIssuer:
    """The key this run trusts and the access tokens it has granted (with their expiry)."""

    def __init__(self, token_uri: str) -> None:
        self.token_uri = token_uri
        self._key = rsa.generate_private_key(public_exponent=65537, key_size=_KEY_BITS)
        self._public_pem = (
            self._key.public_key()
            .public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
            .decode()
        )
        self._granted: dict[str, float] = {}  # access token: when it expires (time.time())
        self._lock = threading.Lock()

    def key_document(self) -> dict:
        """The service-account key file's content: whoever holds it can get tokens."""
        pem = self._key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ).decode()
        return {
            "type": "service_account",
            "project_id": "local",
            "private_key_id": _KEY_ID,
            "private_key": pem,
            "client_email": CLIENT_EMAIL,
            "client_id": "0",
            "token_uri": self.token_uri,
        }

    def _verified_claims(self, assertion: str) -> dict:
        try:
            claims = jwt.decode(
                assertion, certs=self._public_pem, audience=[self.token_uri, GOOGLE_TOKEN_URI]
            )
        except exceptions.MalformedError:
            # google-auth's message for one quotes the assertion, signature and all.
            raise ApiError(401, f"invalid_grant: not a JWT ({_NOT_A_JWT})") from None
        except (exceptions.GoogleAuthError, ValueError) as error:
            # google-auth's message names the failed check; the assertion never reaches it.
            raise ApiError(401, f"invalid_grant: {error}") from None
        if claims.get("iss") != CLIENT_EMAIL:
            raise ApiError(401, f"invalid_grant: the issuer is not {CLIENT_EMAIL}")
        return claims

    def grant(self, body: bytes) -> dict:
        """The token endpoint's answer to a form-encoded grant."""
        form = urllib.parse.parse_qs(body.decode(errors="replace"))
        if form.get("grant_type") != [JWT_BEARER] or not form.get("assertion"):
            raise ApiError(400, f"unsupported_grant_type: only {JWT_BEARER} with an assertion")
        claims = self._verified_claims(form["assertion"][0])
        now = int(time.time())
        if audience := claims.get("target_audience"):
            return {"id_token": self.id_token(audience, CLIENT_EMAIL)}
        access_token = "local-" + secrets.token_urlsafe(32)
        with self._lock:
            self._granted = {t: e for t, e in self._granted.items() if e > now}
            self._granted[access_token] = now + LIFETIME_SECONDS
        return {
            "access_token": access_token,
            "token_type": "Bearer",
            "expires_in": LIFETIME_SECONDS,
        }

    def id_token(self, audience: str, email: str) -> str:
        """An ID token for `audience` naming `email`, signed by this run's key."""
        now = int(time.time())
        claims = {
            "iss": ID_TOKEN_ISSUER,
            "aud": audience,
            "sub": email,
            "email": email,
            "iat": now,
            "exp": now + LIFETIME_SECONDS,
        }
        pem = self.key_document()["private_key"]
        signer = crypt.RSASigner.from_string(pem, key_id=_KEY_ID)
        return jwt.encode(signer, claims).decode()

    def verify_id_token(self, token: str, audiences: str | Sequence[str]) -> dict:
        """The claims of an ID token this run signed for one of `audiences`, still valid;
        ValueError (with google-auth's reason, never the token) otherwise."""
        if not isinstance(audiences, str):
            audiences = list(audiences)
        try:
            claims = jwt.decode(token, certs=self._public_pem, audience=audiences)
        except exceptions.MalformedError:
            # google-auth's message for one quotes the token, signature and all.
            raise ValueError(f"the ID token is refused: not a JWT ({_NOT_A_JWT})") from None
        except (exceptions.GoogleAuthError, ValueError) as error:
            raise ValueError(f"the ID token is refused: {error}") from None
        if claims.get("iss") != ID_TOKEN_ISSUER:
            raise ValueError(f"the ID token's issuer is not {ID_TOKEN_ISSUER}")
        return claims

    def accepts(self, token: str) -> bool:
        """Whether `token` is one this run granted and not yet expired; every granted token is
        compared in constant time, so the answer's timing says nothing of how close it was."""
        now = time.time()
        with self._lock:
            granted = list(self._granted.items())
        matched = False
        for candidate, expires in granted:
            if hmac.compare_digest(candidate.encode(), token.encode()) and expires > now:
                matched = True
        return matched
