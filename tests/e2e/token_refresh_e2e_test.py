"""ID tokens as a service's channel (python/channels) mints them, against servers the tests
control: minted by google-auth from a service-account key file (Application Default
Credentials), fetched again exactly when google-auth's refresh window says so, and seen by a
verifying server, directly and through a relay. The client binary's tokens and retries are
client_retry_e2e_test.py's.

Token lifetimes are chosen against google-auth's REFRESH_THRESHOLD (3 min 45 s in 2.62.2): a
token that expires sooner than that is "stale" and google-auth fetches a new one before the
next call; a token of an hour is fresh and is reused. Waiting for real expiry would take
minutes and the server's 30 s clock skew would hide it, so the token endpoint issues tokens
with the lifetimes each test asks for.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from unittest import mock

import grpc
from absl.testing import absltest
from google.auth import _helpers as google_auth_helpers
from kittest.v1 import test_service_pb2 as pb
from kittest.v1 import test_service_pb2_grpc

from python.channels import channels
from tests.e2e.fake_google import FakeGoogle, Pki
from tests.e2e.processes import KITTEST_SERVER, Server

CALLER = "relay@kit-test.iam.gserviceaccount.com"
REFRESH_WINDOW_SECONDS = int(google_auth_helpers.REFRESH_THRESHOLD.total_seconds())
# Valid for another 3 min 40 s: the server accepts it, google-auth already replaces it.
STALE_LIFETIME = REFRESH_WINDOW_SECONDS - 5
# Expired a minute ago, beyond the server's 30 s of clock skew: the server refuses it.
EXPIRED_LIFETIME = -60


class TokenRefreshTest(absltest.TestCase):
    def setUp(self) -> None:
        super().setUp()
        self.dir = Path(tempfile.mkdtemp(dir=os.environ.get("TEST_TMPDIR")))
        self.pki = Pki(self.dir)
        self.google = FakeGoogle()
        self.addCleanup(self.google.close)
        self.key_file = self.google.service_account_file(self.dir, CALLER)
        self.tls = (
            f"--tls_cert_file={self.pki.server_cert}",
            f"--tls_key_file={self.pki.server_key}",
        )

    def verifying_server(self, audience: str) -> Server:
        return Server(
            *self.tls,
            "--auth_mode=verify",
            f"--audiences={audience}",
            f"--allowed_invokers={CALLER}",
            f"--google_certs_url={self.google.url}/certs",
            binary_var=KITTEST_SERVER,
        )

    def fetches(self) -> int:
        return self.google.hits["/token"]

    def test_token_is_fetched_again_exactly_when_google_auth_must(self) -> None:
        self.enter_context(
            mock.patch.dict(os.environ, {"GOOGLE_APPLICATION_CREDENTIALS": str(self.key_file)})
        )
        # The first token (fetched when the channel is made) has expired; the one fetched for
        # the first call is stale, so the second call fetches again; then an hour-long one.
        self.google.queue_token_lifetimes(EXPIRED_LIFETIME, STALE_LIFETIME)
        with self.verifying_server("https://localhost") as server:
            connection = channels.Connection(
                f"localhost:{server.port}", ca_cert=str(self.pki.ca_cert)
            )
            with channels.open_channel(connection) as channel:
                self.assertEqual(self.fetches(), 1)
                stub = test_service_pb2_grpc.TestServiceStub(channel)
                fetches_after_each_call = []
                for i in range(5):
                    stub.Unary(pb.UnaryRequest(message=str(i)), timeout=10)
                    fetches_after_each_call.append(self.fetches())
            self.assertEqual(fetches_after_each_call, [2, 3, 3, 3, 3])
            expired, stale, fresh = self.google.id_tokens

            # Each call reached the verifying server with a token it accepts, so the call that
            # replaced the expired token sent the new one.
            callers = server.wait_for_logs(lambda e: e.get("caller") == CALLER, 5)
            self.assertLen(callers, 5)
            with grpc.secure_channel(
                f"localhost:{server.port}",
                grpc.ssl_channel_credentials(self.pki.ca_cert.read_bytes()),
            ) as direct:
                direct_stub = test_service_pb2_grpc.TestServiceStub(direct)
                with self.assertRaises(grpc.RpcError) as caught:
                    direct_stub.Unary(
                        pb.UnaryRequest(),
                        metadata=[("authorization", f"Bearer {expired}")],
                        timeout=10,
                    )
                self.assertEqual(caught.exception.code(), grpc.StatusCode.UNAUTHENTICATED)
                # The stale token was still good: it was replaced early, as google-auth should.
                for token in (stale, fresh):
                    direct_stub.Unary(
                        pb.UnaryRequest(),
                        metadata=[("authorization", f"Bearer {token}")],
                        timeout=10,
                    )

    def test_relay_to_tls_upstream_with_id_token(self) -> None:
        env = {
            "GOOGLE_APPLICATION_CREDENTIALS": str(self.key_file),
            "GRPC_DEFAULT_SSL_ROOTS_FILE_PATH": str(self.pki.ca_cert),
        }
        with (
            self.verifying_server("https://localhost") as upstream,
            Server(
                f"--upstream=localhost:{upstream.port}", env=env, binary_var=KITTEST_SERVER
            ) as relay,
            grpc.insecure_channel(relay.address) as channel,
        ):
            request = pb.RelayRequest(request=pb.UnaryRequest(message="hi"))
            reply = test_service_pb2_grpc.TestServiceStub(channel).Relay(request, timeout=10)
            self.assertEqual(reply.response.message, "hi")
            self.assertEqual(upstream.wait_for_log(lambda e: "caller" in e)["caller"], CALLER)


if __name__ == "__main__":
    absltest.main()
