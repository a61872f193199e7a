"""Forged identities against both auth modes: tokens in `authorization` and in
`x-serverless-authorization` (the header Cloud Run verifies when present), two of a header,
payloads that are not JSON objects. Each case checks the status and the caller in the log."""

from __future__ import annotations

import base64
import json

import grpc
from absl.testing import absltest
from kittest.v1 import test_service_pb2 as pb
from kittest.v1 import test_service_pb2_grpc

from tests.e2e.fake_google import FakeGoogle
from tests.e2e.processes import KITTEST_SERVER, Server

ALLOWED = "allowed@kit-test.iam.gserviceaccount.com"
OTHER = "other@kit-test.iam.gserviceaccount.com"
AUDIENCE = "https://kittest.run.app"
UNARY = "/kittest.v1.TestService/Unary"


def unsigned(payload: object) -> str:
    """A JWT with any payload and no valid signature, as anyone can write."""

    def part(value: object) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()

    return f"{part({'alg': 'RS256', 'kid': 'x'})}.{part(payload)}.SIGNATURE_REMOVED_BY_GOOGLE"


def bearer(token: str) -> str:
    return f"Bearer {token}"


class ForgedTokensTest(absltest.TestCase):
    def call(self, server: Server, *metadata: tuple[str, str]) -> grpc.StatusCode:
        with grpc.insecure_channel(server.address) as channel:
            stub = test_service_pb2_grpc.TestServiceStub(channel)
            try:
                stub.Unary(pb.UnaryRequest(), metadata=metadata, timeout=10)
            except grpc.RpcError as error:
                return error.code()
            return grpc.StatusCode.OK

    def assert_healthy(self, server: Server) -> None:
        self.assertIsNone(server.process.poll())
        self.assertNotIn("Traceback", server.output())
        self.assertEqual(server.non_json_lines(), [])

    def test_cloud_run_mode_reads_the_header_cloud_run_verified(self) -> None:
        allowed, other = unsigned({"email": ALLOWED}), unsigned({"email": OTHER})
        with Server(
            "--auth_mode=cloud-run", f"--allowed_invokers={ALLOWED}", binary_var=KITTEST_SERVER
        ) as server:
            # Cloud Run verified x-serverless-authorization and passed authorization untouched:
            # a forged allowed identity there must not win over the verified one.
            cases = [
                ([("x-serverless-authorization", bearer(allowed))], grpc.StatusCode.OK),
                (
                    [
                        ("x-serverless-authorization", bearer(other)),
                        ("authorization", bearer(allowed)),
                    ],
                    grpc.StatusCode.PERMISSION_DENIED,
                ),
                (
                    [
                        ("x-serverless-authorization", bearer(allowed)),
                        ("authorization", bearer(other)),
                    ],
                    grpc.StatusCode.OK,
                ),
                ([("authorization", bearer(allowed))], grpc.StatusCode.OK),
                ([("authorization", bearer(other))], grpc.StatusCode.PERMISSION_DENIED),
                (
                    [
                        ("x-serverless-authorization", bearer(other)),
                        ("x-serverless-authorization", bearer(allowed)),
                    ],
                    grpc.StatusCode.UNAUTHENTICATED,
                ),
                (
                    [("x-serverless-authorization", "Basic YWxsb3dlZA==")],
                    grpc.StatusCode.UNAUTHENTICATED,
                ),
                ([("authorization", bearer("not.a-jwt"))], grpc.StatusCode.UNAUTHENTICATED),
                ([("authorization", bearer(unsigned([ALLOWED])))], grpc.StatusCode.UNAUTHENTICATED),
                ([("authorization", bearer(unsigned(ALLOWED)))], grpc.StatusCode.UNAUTHENTICATED),
                (
                    [("authorization", bearer(unsigned({"email": [ALLOWED]})))],
                    grpc.StatusCode.PERMISSION_DENIED,
                ),
                ([], grpc.StatusCode.UNAUTHENTICATED),
            ]
            for metadata, expected in cases:
                with self.subTest(metadata=metadata):
                    self.assertEqual(self.call(server, *metadata), expected)
            lines = server.wait_for_logs(lambda e: e.get("method") == UNARY, len(cases))
            callers = {line.get("caller") for line in lines if line["code"] == "OK"}
            self.assertEqual(callers, {ALLOWED})
            self.assert_healthy(server)

    def test_verify_mode_refuses_forgeries_without_a_traceback(self) -> None:
        google = FakeGoogle()
        self.addCleanup(google.close)
        genuine = google.id_token(AUDIENCE, email=ALLOWED)
        header, _, signature = genuine.split(".")
        with Server(
            "--auth_mode=verify",
            f"--audiences={AUDIENCE}",
            f"--google_certs_url={google.url}/certs",
            binary_var=KITTEST_SERVER,
        ) as server:
            cases = [
                ([("x-serverless-authorization", bearer(genuine))], grpc.StatusCode.OK),
                ([("authorization", bearer(genuine))], grpc.StatusCode.OK),
                (
                    [("x-serverless-authorization", bearer(unsigned({"email": OTHER})))],
                    grpc.StatusCode.UNAUTHENTICATED,
                ),
                (
                    [
                        ("x-serverless-authorization", bearer(unsigned({"email": OTHER}))),
                        ("authorization", bearer(genuine)),
                    ],
                    grpc.StatusCode.UNAUTHENTICATED,
                ),
                ([("authorization", bearer(unsigned([1, 2])))], grpc.StatusCode.UNAUTHENTICATED),
                ([("authorization", bearer(unsigned("text")))], grpc.StatusCode.UNAUTHENTICATED),
                (
                    [
                        (
                            "authorization",
                            bearer(f"{header}.{unsigned([1]).split('.')[1]}.{signature}"),
                        )
                    ],
                    grpc.StatusCode.UNAUTHENTICATED,
                ),
                (
                    [("authorization", bearer(google.id_token("https://elsewhere.run.app")))],
                    grpc.StatusCode.UNAUTHENTICATED,
                ),
            ]
            for metadata, expected in cases:
                with self.subTest(metadata=metadata):
                    self.assertEqual(self.call(server, *metadata), expected)
            self.assert_healthy(server)


if __name__ == "__main__":
    absltest.main()
