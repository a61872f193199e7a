"""The front end's invoker check, request by request, over real sockets (gate_fixture.py).

A private service: no token is 403 (PERMISSION_DENIED to a gRPC client), a token that fails a
check 401 (UNAUTHENTICATED): signed by another key, for another audience, expired, not a JWT
(more segments too: google-auth's message for that quotes the token, never logged),
not `Bearer`, repeated, or with bytes that are not ASCII; a header name that is not a lowercase
token is 400. A good one reaches the instance with its signature removed;
`X-Serverless-Authorization` is the header checked when present, and `Authorization` then
reaches the instance untouched. A later request naming another host is checked against the URL
the connection was routed by. The front end logs why it refused, never a token. A public
service passes everything untouched.
"""

from __future__ import annotations

import base64
import json
import time

import grpc
from absl.testing import absltest

from tests.cloud_run.gate_fixture import (
    HOST,
    TAG_HOST,
    GateTestCase,
)
from tests.cloud_run.raw_h2 import RawClient


class InvokerCheckTest(GateTestCase):
    def test_no_token_is_403(self) -> None:
        channel = self.channel(self.private)
        self.assert_refused(channel, [], grpc.StatusCode.PERMISSION_DENIED, 403)
        self.assertIn(f"front end: {HOST}: 403 (no ID token)", self.private_output.getvalue())

    def test_a_token_for_the_service_url_passes_with_its_signature_removed(self) -> None:
        token = self.token(self.url(self.private))
        seen = self.call(self.channel(self.private), [("authorization", f"Bearer {token}")])
        header, payload, signature = seen["authorization"].removeprefix("Bearer ").split(".")
        self.assertEqual(signature, "SIGNATURE_REMOVED_BY_GOOGLE")
        self.assertEqual(f"{header}.{payload}", token.rpartition(".")[0])
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        self.assertEqual(claims["email"], "caller@example.com")

    def test_the_tag_url_and_a_custom_audience_are_audiences_too(self) -> None:
        tag = self.url(self.private, TAG_HOST)
        seen = self.call(
            self.channel(self.private, TAG_HOST), [("authorization", f"Bearer {self.token(tag)}")]
        )
        self.assertIn("SIGNATURE_REMOVED_BY_GOOGLE", seen["authorization"])
        custom = self.token("https://custom.example")
        seen = self.call(self.channel(self.private), [("authorization", f"Bearer {custom}")])
        self.assertIn("SIGNATURE_REMOVED_BY_GOOGLE", seen["authorization"])

    def test_tokens_that_fail_a_check_are_401(self) -> None:
        url = self.url(self.private)
        tag = self.url(self.private, TAG_HOST)
        now = int(time.time())
        header, payload, _ = self.token(url).split(".")
        bad = {
            "expired": f"Bearer {self.signed(aud=url, iat=now - 7200, exp=now - 3600)}",
            "another issuer": f"Bearer {self.signed(aud=url, iss='https://evil.example')}",
            "another key": f"Bearer {self.token(url, self.other_issuer)}",
            "another audience": f"Bearer {self.token('http://other.kit-local.localhost')}",
            "the tag's token at the service": f"Bearer {self.token(tag)}",
            "a forged signature": f"Bearer {header}.{payload}.{'A' * 342}",
            "not a JWT": "Bearer not-a-token",
            "not Bearer": f"Basic {self.token(url)}",
            "no token after Bearer": "Bearer ",
        }
        channel = self.channel(self.private)
        for case, value in bad.items():
            with self.subTest(case):
                self.assert_refused(
                    channel, [("authorization", value)], grpc.StatusCode.UNAUTHENTICATED, 401
                )
        self.assertNotIn(payload, self.private_output.getvalue())

    def test_bytes_that_are_not_ascii_are_401_and_the_front_end_answers_on(self) -> None:
        for value in (b"Bearer \xff\xfe", b"Bearer \xc3\xa9t\xc3\xa9", b"\x00\x01"):
            with self.subTest(value):
                status = self.raw_status(self.private, [(b"authorization", value)])
                self.assertEqual(status, 401)
        good = [("authorization", f"Bearer {self.token(self.url(self.private))}")]
        self.assertIn("authorization", self.call(self.channel(self.private), good))

    def test_x_serverless_authorization_is_checked_and_authorization_passes_untouched(
        self,
    ) -> None:
        channel = self.channel(self.private)
        own = "Bearer for-the-container-itself"
        good = self.token(self.url(self.private))
        seen = self.call(
            channel,
            [("x-serverless-authorization", f"Bearer {good}"), ("authorization", own)],
        )
        self.assertTrue(seen["x-serverless-authorization"].endswith("SIGNATURE_REMOVED_BY_GOOGLE"))
        self.assertEqual(seen["authorization"], own)
        # A good Authorization does not make up for a bad X-Serverless-Authorization.
        self.assert_refused(
            channel,
            [("x-serverless-authorization", "Bearer forged"), ("authorization", f"Bearer {good}")],
            grpc.StatusCode.UNAUTHENTICATED,
            401,
        )

    def test_a_header_name_that_is_not_lowercase_is_400(self) -> None:
        good = f"Bearer {self.token(self.url(self.private))}".encode()
        for name in (b"X-Serverless-Authorization", b"x-serverless-authorization ", b"x y"):
            with self.subTest(name):
                client = RawClient(self.private.port)
                self.addCleanup(client.close)
                headers = [(b"authorization", good), (name, b"Bearer forged")]
                client.request(1, self.request_headers(self.private) + headers, end=True)
                self.assert_answered(client, 1, 400)
        self.assertIn(
            "400 (a header name that is not a lowercase token)", self.private_output.getvalue()
        )

    def test_a_repeated_token_header_is_401(self) -> None:
        good = f"Bearer {self.token(self.url(self.private))}"
        self.assert_refused(
            self.channel(self.private),
            [("authorization", good), ("authorization", good)],
            grpc.StatusCode.UNAUTHENTICATED,
            401,
        )

    def test_a_public_service_checks_nothing_and_changes_nothing(self) -> None:
        forged = "Bearer a.b.c"
        seen = self.call(self.channel(self.public), [("authorization", forged)])
        self.assertEqual(seen["authorization"], forged)
        self.assertNotIn("authorization", self.call(self.channel(self.public), []))

    def test_a_token_with_more_segments_is_401_and_never_logged(self) -> None:
        token = self.token(self.url(self.private))
        signature = token.rpartition(".")[2]
        for value in (f"Bearer {token}.", f"Bearer {token}.more", f"Bearer x.{token}"):
            with self.subTest(value.replace(token, "TOKEN")):
                self.assert_refused(
                    self.channel(self.private),
                    [("authorization", value)],
                    grpc.StatusCode.UNAUTHENTICATED,
                    401,
                )
        self.assertIn("401 (the ID token is refused: not a JWT", self.private_output.getvalue())
        self.assertNotIn(signature, self.private_output.getvalue())

    def test_a_later_request_s_authority_is_not_its_audience(self) -> None:
        # The connection goes where its first request's :authority routed it; a later request
        # naming another host, with a token for that host, is still a call of this service.
        client = self.raw_client()
        self.assert_still_answers(client, 1)
        other = f"other.kit-local.localhost:{self.private.port}".encode()
        token = self.token(f"http://{other.decode()}")
        headers = [
            (name, other if name == b":authority" else value)
            for name, value in self.request_headers(self.private)
        ]
        client.request(3, [*headers, (b"authorization", f"Bearer {token}".encode())], end=True)
        self.assert_answered(client, 3, 401)
        self.assert_still_answers(client, 5)


if __name__ == "__main__":
    absltest.main()
