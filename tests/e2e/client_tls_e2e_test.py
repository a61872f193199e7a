"""The client binary's TLS and token flags (--ca_cert, --authority, --token_file) against a
server with a private CA and one that verifies ID tokens. The client's subcommands are the
samples' (this calls ping's): these tests go with the client's code for ping if it is deleted.
The server side of TLS and tokens is the kit's, in tls_auth_e2e_test.py."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from absl.testing import absltest

from tests.e2e.fake_google import FakeGoogle, Pki
from tests.e2e.processes import PING_SERVER, Server, run

AUDIENCE = "https://ping.example.run.app"


def scratch() -> Path:
    return Path(tempfile.mkdtemp(dir=os.environ.get("TEST_TMPDIR")))


class ClientTlsTest(absltest.TestCase):
    @classmethod
    def setUpClass(cls) -> None:
        cls.pki = Pki()
        cls.server = Server(
            f"--tls_cert_file={cls.pki.server_cert}",
            f"--tls_key_file={cls.pki.server_key}",
            binary_var=PING_SERVER,
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
            "ping",
            "--message=tls",
        )
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertIn('message: "tls"', result.stdout)

    def test_wrong_ca_fails_clearly(self) -> None:
        other = Pki(ca_name="another CA")
        result = run(
            "CLIENT_BIN",
            f"--server=localhost:{self.server.port}",
            f"--ca_cert={other.ca_cert}",
            "--noauth",
            "--timeout=10",
            "ping",
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
            "ping",
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
            binary_var=PING_SERVER,
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
            "ping",
        )
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertEqual(self.server.wait_for_log(lambda e: "caller" in e)["code"], "OK")


if __name__ == "__main__":
    absltest.main()
