"""A token verify mode rejects is named by a fixed reason, never quoted back.

google-auth's rejections quote the token's own parts (a header segment that does not parse, the
key id, the audience). The status detail reaches the caller, every proxy on the way back and the
server's log line, so none of those bytes may be in it.
"""

import asyncio
import base64
import json

import grpc
from absl.testing import absltest

from python.runtime import invoker_auth

AUDIENCE = "https://svc.example"
MARKER = "S3CRET-MARKER"


def segment(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def token(header: bytes, payload: dict) -> str:
    return ".".join([segment(header), segment(json.dumps(payload).encode()), segment(b"sig")])


PAYLOAD = {"iss": "https://accounts.google.com", "aud": AUDIENCE, "exp": 4102444800, "iat": 0}


class RejectionsTest(absltest.TestCase):
    def setUp(self) -> None:
        policy = invoker_auth.Policy(mode=invoker_auth.VERIFY, audiences=[AUDIENCE])
        self.authenticator = invoker_auth.Authenticator(policy)

        async def certs() -> dict[str, str]:
            return {"known-key": "-----BEGIN CERTIFICATE-----\nnot a certificate\n"}

        self.authenticator.certs.get = certs

    def rejection(self, bearer: str) -> invoker_auth.Unauthorized:
        metadata = [("authorization", f"Bearer {bearer}")]
        with self.assertRaises(invoker_auth.Unauthorized) as raised:
            asyncio.run(self.authenticator.caller(metadata))
        return raised.exception

    def test_a_header_segment_that_does_not_parse_is_not_quoted(self) -> None:
        denied = self.rejection(token(b'{"alg": "RS256", "kid": "' + MARKER.encode(), PAYLOAD))
        self.assertEqual(denied.code, grpc.StatusCode.UNAUTHENTICATED)
        self.assertEqual(str(denied), "invalid token: malformed")

    def test_an_unknown_key_id_is_not_quoted(self) -> None:
        header = json.dumps({"alg": "RS256", "kid": MARKER}).encode()
        denied = self.rejection(token(header, PAYLOAD))
        self.assertEqual(denied.code, grpc.StatusCode.UNAUTHENTICATED)
        self.assertEqual(str(denied), "invalid token: signed by an unknown key")

    def test_an_unsupported_algorithm_is_not_quoted(self) -> None:
        header = json.dumps({"alg": MARKER, "kid": "known-key"}).encode()
        denied = self.rejection(token(header, PAYLOAD))
        self.assertEqual(denied.code, grpc.StatusCode.UNAUTHENTICATED)
        self.assertNotIn(MARKER, str(denied))
        self.assertTrue(str(denied).startswith("invalid token: "), str(denied))


if __name__ == "__main__":
    absltest.main()
