"""ID tokens minted by google-auth from a service-account key file (Application Default
Credentials), refreshed on a long-lived channel, and used by the server's relay over TLS."""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

from absl.testing import absltest
from ping.v1 import ping_pb2, ping_pb2_grpc

from python.client import channels
from tests.e2e.fake_google import FakeGoogle, Pki
from tests.e2e.processes import Server, run

CALLER = "relay@kit-test.iam.gserviceaccount.com"


class TokenRefreshTest(absltest.TestCase):
    def setUp(self) -> None:
        super().setUp()
        self.dir = Path(tempfile.mkdtemp(dir=os.environ.get("TEST_TMPDIR")))
        self.pki = Pki(self.dir)
        # Tokens that expire within seconds, so one channel outlives several.
        self.google = FakeGoogle(token_lifetime_seconds=2)
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
        )

    def test_long_lived_channel_keeps_working_across_expiries(self) -> None:
        os.environ["GOOGLE_APPLICATION_CREDENTIALS"] = str(self.key_file)
        self.addCleanup(os.environ.pop, "GOOGLE_APPLICATION_CREDENTIALS")
        with self.verifying_server("https://localhost") as server:
            connection = channels.Connection(
                f"localhost:{server.port}", ca_cert=str(self.pki.ca_cert)
            )
            with channels.open_channel(connection) as channel:
                stub = ping_pb2_grpc.PingServiceStub(channel)
                deadline = time.monotonic() + 6  # three token lifetimes
                calls = 0
                while time.monotonic() < deadline:
                    stub.Send(ping_pb2.Request(message="x"), timeout=10)
                    calls += 1
                    time.sleep(0.2)
            self.assertGreater(calls, 10)
            self.assertGreaterEqual(self.google.hits["/token"], 3, "tokens were not refreshed")
            callers = {
                e.get("caller") for e in server.wait_for_logs(lambda e: "caller" in e, calls)
            }
            self.assertEqual(callers, {CALLER})

    def test_client_binary_mints_token_for_default_audience(self) -> None:
        with self.verifying_server("https://localhost") as server:
            result = run(
                "CLIENT_BIN",
                f"--server=localhost:{server.port}",
                f"--ca_cert={self.pki.ca_cert}",
                "ping",
                env={"GOOGLE_APPLICATION_CREDENTIALS": str(self.key_file)},
            )
        self.assertEqual(result.returncode, 0, result.stderr)

    def test_relay_to_tls_upstream_with_id_token(self) -> None:
        env = {
            "GOOGLE_APPLICATION_CREDENTIALS": str(self.key_file),
            "GRPC_DEFAULT_SSL_ROOTS_FILE_PATH": str(self.pki.ca_cert),
        }
        with (
            self.verifying_server("https://localhost") as upstream,
            Server(f"--upstream=localhost:{upstream.port}", env=env) as relay,
        ):
            result = run(
                "CLIENT_BIN", f"--server={relay.address}", "--insecure", "relay", "--message=hi"
            )
            self.assertEqual(result.returncode, 0, result.stderr)
            self.assertIn('message: "hi (relayed)"', result.stdout)
            self.assertEqual(upstream.wait_for_log(lambda e: "caller" in e)["caller"], CALLER)


class RetryTest(absltest.TestCase):
    def test_call_during_restart_succeeds_once_server_is_back(self) -> None:
        first = Server()
        port = first.port
        self.assertEqual(first.stop(), 0)
        import subprocess

        from tests.e2e.processes import binary

        client = subprocess.Popen(
            [
                binary("CLIENT_BIN"),
                f"--server=127.0.0.1:{port}",
                "--insecure",
                "--wait_for_ready",
                "--timeout=30",
                "ping",
                "--message=back",
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        time.sleep(1.5)  # the client is now waiting on a closed port
        self.assertIsNone(client.poll(), "the call gave up while the server was down")
        with Server(env={"PORT": str(port)}):
            stdout, stderr = client.communicate(timeout=30)
        self.assertEqual(client.returncode, 0, stderr)
        self.assertIn('message: "back"', stdout)


if __name__ == "__main__":
    absltest.main()
