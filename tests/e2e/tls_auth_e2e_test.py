"""TLS as a service meets it on Cloud Run, and ID tokens checked by the server (--auth_mode),
against a private CA and a stand-in for Google's token and certificate endpoints. The client
binary's flags for them are client_tls_e2e_test.py's."""

from __future__ import annotations

from pathlib import Path

import grpc
from absl.testing import absltest
from google.auth import crypt
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc
from kittest.v1 import test_service_pb2 as pb
from kittest.v1 import test_service_pb2_grpc

from python.channels import channels
from tests.e2e.fake_google import FakeGoogle, Pki, private_pem, rsa_key
from tests.e2e.processes import KITTEST_SERVER, Server

AUDIENCE = "https://kittest.example.run.app"
ALLOWED = "caller@example.iam.gserviceaccount.com"
ALG_NONE_HEADER = "eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0"  # {"alg":"none","typ":"JWT"}


class TlsTest(absltest.TestCase):
    """The server on TLS with a private CA, through python/channels as services call it."""

    @classmethod
    def setUpClass(cls) -> None:
        cls.pki = Pki()
        cls.server = Server(
            f"--tls_cert_file={cls.pki.server_cert}",
            f"--tls_key_file={cls.pki.server_key}",
            binary_var=KITTEST_SERVER,
        )

    @classmethod
    def tearDownClass(cls) -> None:
        cls.server.stop()

    def call(self, server: str, ca_cert: Path, authority: str | None = None) -> pb.UnaryResponse:
        connection = channels.Connection(
            server, ca_cert=str(ca_cert), authority=authority, auth=False
        )
        with channels.open_channel(connection) as channel:
            stub = test_service_pb2_grpc.TestServiceStub(channel)
            return stub.Unary(pb.UnaryRequest(message="tls"), timeout=10)

    def test_channel_trusts_private_ca(self) -> None:
        reply = self.call(f"localhost:{self.server.port}", self.pki.ca_cert)
        self.assertEqual(reply.message, "tls")

    def test_wrong_ca_fails_clearly(self) -> None:
        other = Pki(ca_name="another CA")
        with self.assertRaises(grpc.RpcError) as caught:
            self.call(f"localhost:{self.server.port}", other.ca_cert)
        self.assertEqual(caught.exception.code(), grpc.StatusCode.UNAVAILABLE)
        self.assertRegex(caught.exception.details(), "certificate|handshake|SSL")

    def test_authority_override_is_checked_against_certificate(self) -> None:
        reply = self.call(f"127.0.0.1:{self.server.port}", self.pki.ca_cert, "localhost")
        self.assertEqual(reply.message, "tls")


class VerifyModeTest(absltest.TestCase):
    @classmethod
    def setUpClass(cls) -> None:
        cls.google = FakeGoogle()
        cls.server = Server(
            "--auth_mode=verify",
            f"--audiences={AUDIENCE}",
            f"--allowed_invokers={ALLOWED}",
            f"--google_certs_url={cls.google.url}/certs",
            binary_var=KITTEST_SERVER,
        )
        cls.channel = grpc.insecure_channel(cls.server.address)
        cls.stub = test_service_pb2_grpc.TestServiceStub(cls.channel)

    @classmethod
    def tearDownClass(cls) -> None:
        cls.channel.close()
        cls.server.stop()
        cls.google.close()

    def send(self, token: str | None) -> grpc.StatusCode:
        metadata = [("authorization", f"Bearer {token}")] if token is not None else []
        try:
            self.stub.Unary(pb.UnaryRequest(message="x"), metadata=metadata, timeout=10)
        except grpc.RpcError as error:
            return error.code()
        return grpc.StatusCode.OK

    def test_valid_token(self) -> None:
        self.assertEqual(self.send(self.google.id_token(AUDIENCE)), grpc.StatusCode.OK)
        entry = self.server.wait_for_log(lambda e: e.get("caller") == ALLOWED)
        self.assertEqual(entry["code"], "OK")

    def test_invalid_tokens_are_unauthenticated(self) -> None:
        stranger = crypt.RSASigner.from_string(private_pem(rsa_key()), key_id="test-key-1")
        payload = self.google.id_token(AUDIENCE).split(".")[1]
        unsigned = f"{ALG_NONE_HEADER}.{payload}."
        cases = {
            "expired": self.google.id_token(AUDIENCE, lifetime=-3600),
            "wrong audience": self.google.id_token("https://other.example"),
            "wrong issuer": self.google.id_token(AUDIENCE, iss="https://evil.example"),
            "bad signature": self.google.id_token(AUDIENCE, signer=stranger),
            "alg none": unsigned,
            "garbage": "not.a.token",
            "missing": None,
        }
        for case, token in cases.items():
            with self.subTest(case):
                self.assertEqual(self.send(token), grpc.StatusCode.UNAUTHENTICATED)

    def test_valid_but_not_allowed_is_permission_denied(self) -> None:
        token = self.google.id_token(AUDIENCE, email="someone@example.com")
        self.assertEqual(self.send(token), grpc.StatusCode.PERMISSION_DENIED)

    def test_certs_are_fetched_once_for_many_calls(self) -> None:
        for _ in range(20):
            self.assertEqual(self.send(self.google.id_token(AUDIENCE)), grpc.StatusCode.OK)
        self.assertEqual(self.google.hits["/certs"], 1)

    def test_health_and_reflection_stay_open(self) -> None:
        health = health_pb2_grpc.HealthStub(self.channel)
        status = health.Check(health_pb2.HealthCheckRequest(), timeout=10).status
        self.assertEqual(status, health_pb2.HealthCheckResponse.SERVING)
        reflection = reflection_pb2_grpc.ServerReflectionStub(self.channel)
        request = reflection_pb2.ServerReflectionRequest(list_services="")
        response = next(reflection.ServerReflectionInfo(iter([request]), timeout=10))
        self.assertIn(
            "kittest.v1.TestService", {s.name for s in response.list_services_response.service}
        )


class CloudRunModeTest(absltest.TestCase):
    def test_reads_caller_from_payload_and_applies_allow_list(self) -> None:
        google = FakeGoogle()
        self.addCleanup(google.close)
        # The front end verified the token and replaced its signature; the server must not care.
        header, payload, _ = google.id_token(AUDIENCE).split(".")
        forwarded = f"{header}.{payload}.SIGNATURE_REMOVED_BY_GOOGLE"
        other = ".".join(google.id_token(AUDIENCE, email="x@example.com").split(".")[:2]) + ".sig"
        with (
            Server(
                "--auth_mode=cloud-run", f"--allowed_invokers={ALLOWED}", binary_var=KITTEST_SERVER
            ) as server,
            grpc.insecure_channel(server.address) as channel,
        ):
            stub = test_service_pb2_grpc.TestServiceStub(channel)
            stub.Unary(
                pb.UnaryRequest(), metadata=[("authorization", f"Bearer {forwarded}")], timeout=10
            )
            self.assertEqual(server.wait_for_log(lambda e: "caller" in e)["caller"], ALLOWED)
            with self.assertRaises(grpc.RpcError) as caught:
                stub.Unary(
                    pb.UnaryRequest(), metadata=[("authorization", f"Bearer {other}")], timeout=10
                )
            self.assertEqual(caught.exception.code(), grpc.StatusCode.PERMISSION_DENIED)


if __name__ == "__main__":
    absltest.main()
