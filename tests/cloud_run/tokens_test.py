"""The local Cloud Run's token endpoint (tools/cloud_run/tokens.py) on its own: it grants only
assertions signed by the key it made, for its own URI, unexpired, from its own issuer; and the
API accepts only the access tokens it granted."""

from __future__ import annotations

import time
import urllib.parse

from absl.testing import absltest
from google.auth import crypt, jwt

from tools.cloud_run.errors import ApiError
from tools.cloud_run.tokens import GOOGLE_TOKEN_URI, JWT_BEARER, TokenIssuer

TOKEN_URI = "http://127.0.0.1:8180/token"


def assertion(key: dict, **claims: object) -> str:
    now = int(time.time())
    payload = {
        "iss": key["client_email"],
        "aud": key["token_uri"],
        "iat": now,
        "exp": now + 3600,
    } | claims
    return jwt.encode(crypt.RSASigner.from_service_account_info(key), payload).decode()


def form(value: str) -> bytes:
    return urllib.parse.urlencode({"grant_type": JWT_BEARER, "assertion": value}).encode()


class TokenIssuerTest(absltest.TestCase):
    def setUp(self) -> None:
        super().setUp()
        self.issuer = TokenIssuer(TOKEN_URI)
        self.key = self.issuer.key_document()

    def assertRefused(self, body: bytes, code: int = 401) -> ApiError:
        with self.assertRaises(ApiError) as refused:
            self.issuer.grant(body)
        self.assertEqual(refused.exception.code, code)
        return refused.exception

    def test_its_own_key_gets_an_access_token_the_api_accepts(self) -> None:
        granted = self.issuer.grant(form(assertion(self.key)))
        self.assertEqual(granted["token_type"], "Bearer")
        self.assertTrue(self.issuer.accepts(granted["access_token"]))
        self.assertFalse(self.issuer.accepts(granted["access_token"] + "x"))
        self.assertFalse(self.issuer.accepts(""))

    def test_a_target_audience_gets_an_id_token_it_verifies(self) -> None:
        granted = self.issuer.grant(form(assertion(self.key, target_audience="http://svc")))
        claims = self.issuer.verify_id_token(granted["id_token"], "http://svc")
        self.assertEqual(claims["aud"], "http://svc")
        self.assertNotIn("access_token", granted)

    def test_an_id_token_for_another_audience_or_key_is_refused(self) -> None:
        token = self.issuer.id_token("http://svc", "a@b.example")
        with self.assertRaisesRegex(ValueError, "refused"):
            self.issuer.verify_id_token(token, "http://other")
        with self.assertRaisesRegex(ValueError, "refused"):
            TokenIssuer(TOKEN_URI).verify_id_token(token, "http://svc")
        header, payload, _ = token.split(".")
        with self.assertRaisesRegex(ValueError, "refused"):
            self.issuer.verify_id_token(f"{header}.{payload}.", "http://svc")

    def test_another_key_is_refused(self) -> None:
        other = TokenIssuer(TOKEN_URI).key_document()
        self.assertRefused(form(assertion(other)))

    def test_googles_audience_is_granted_as_google_auth_sends_it(self) -> None:
        granted = self.issuer.grant(form(assertion(self.key, aud=GOOGLE_TOKEN_URI)))
        self.assertTrue(self.issuer.accepts(granted["access_token"]))

    def test_another_audience_is_refused(self) -> None:
        self.assertRefused(form(assertion(self.key, aud="http://127.0.0.1:9/token")))

    def test_an_expired_assertion_is_refused(self) -> None:
        past = int(time.time()) - 7200
        self.assertRefused(form(assertion(self.key, iat=past, exp=past + 60)))

    def test_another_issuer_is_refused(self) -> None:
        self.assertRefused(form(assertion(self.key, iss="someone@else.example")))

    def test_an_unsigned_or_garbled_assertion_is_refused(self) -> None:
        header, payload, _ = assertion(self.key).split(".")
        for value in (f"{header}.{payload}.", "not.a.jwt", "nodots", "a.b.c.d"):
            with self.subTest(value):
                self.assertRefused(form(value))

    def test_another_grant_type_is_400(self) -> None:
        self.assertRefused(b"grant_type=password&username=root", code=400)

    def test_a_made_up_token_is_not_accepted(self) -> None:
        self.issuer.grant(form(assertion(self.key)))
        self.assertFalse(self.issuer.accepts("local-" + "A" * 43))


if __name__ == "__main__":
    absltest.main()
