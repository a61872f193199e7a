"""The kit's client binary's TLS and token flags (--ca_cert, --authority, --token_file) against
the kit's test service with a private CA, and verifying ID tokens: `call`, so reflection's calls
and the method's all go through them. The server side of TLS and tokens is tls_auth_e2e_test's."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

from absl.testing import absltest

from tests.e2e.fake_google import FakeGoogle, Pki
from tests.e2e.processes import KITTEST_SERVER, Server, run

AUDIENCE = "https://kittest.example.run.app"
UNARY = "kittest.v1.TestService/Unary"
# FakeGoogle.id_token's caller.
CALLER = "caller@example.iam.gserviceaccount.com"


def scratch() -> Path:
    return Path(tempfile.mkdtemp(dir=os.environ.get("TEST_TMPDIR")))


class ClientTlsTest(absltest.TestCase):
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

    def test_client_trusts_private_ca(self) -> None:
        result = run(
            "CLIENT_BIN",
            f"--server=localhost:{self.server.port}",
            f"--ca_cert={self.pki.ca_cert}",
            "--noauth",
            "call",
            UNARY,
            json.dumps({"message": "tls"}),
        )
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertEqual(json.loads(result.stdout)["message"], "tls")

    def test_wrong_ca_fails_clearly(self) -> None:
        other = Pki(ca_name="another CA")
        result = run(
            "CLIENT_BIN",
            f"--server=localhost:{self.server.port}",
            f"--ca_cert={other.ca_cert}",
            "--noauth",
            "--timeout=10",
            "call",
            UNARY,
            "{}",
        )
        self.assertEqual(result.returncode, 1)
        self.assertRegex(
            result.stderr.strip(), r"^client: UNAVAILABLE: .*(certificate|handshake|SSL)"
        )

    def test_authority_override_is_checked_against_certificate(self) -> None:
        result = run(
            "CLIENT_BIN",
            f"--server=127.0.0.1:{self.server.port}",
            "--authority=localhost",
            f"--ca_cert={self.pki.ca_cert}",
            "--noauth",
            "call",
            UNARY,
            "{}",
        )
        self.assertEqual(result.returncode, 0, result.stderr)


class ClientTokenFileTest(absltest.TestCase):
    @classmethod
    def setUpClass(cls) -> None:
        cls.google = FakeGoogle()
        cls.server = Server(
            "--auth_mode=verify",
            f"--audiences={AUDIENCE}",
            f"--google_certs_url={cls.google.url}/certs",
            binary_var=KITTEST_SERVER,
        )

    @classmethod
    def tearDownClass(cls) -> None:
        cls.server.stop()
        cls.google.close()

    def test_client_token_file(self) -> None:
        token_file = scratch() / "token"
        token_file.write_text(self.google.id_token(AUDIENCE) + "\n")
        result = run(
            "CLIENT_BIN",
            f"--server={self.server.address}",
            "--insecure",
            f"--token_file={token_file}",
            "call",
            UNARY,
            "{}",
        )
        self.assertEqual(result.returncode, 0, result.stderr)
        logged = self.server.wait_for_log(lambda e: e.get("method") == f"/{UNARY}")
        self.assertEqual((logged["code"], logged["caller"]), ("OK", CALLER))


if __name__ == "__main__":
    absltest.main()
