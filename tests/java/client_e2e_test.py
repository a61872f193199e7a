"""The Java client (//java/client) against the real Python servers: every RPC kind of
RouteGuide, ping, health, TLS with a private CA (through netty-tcnative), bad input, and the
same output as the Python client for the same calls, which shows both languages' stubs, built
from the same proto_library targets, agree with the services."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import tempfile
from collections.abc import Callable
from pathlib import Path

from absl.testing import absltest

from tests.e2e.cpu_hog import cpu_hog
from tests.e2e.fake_google import FakeGoogle, Pki
from tests.e2e.processes import PING_SERVER, ROUTE_GUIDE_SERVER, Server, binary, run

JAVA_CLIENT = "JAVA_CLIENT_BIN"
PYTHON_CLIENT = "CLIENT_BIN"
AUDIENCE = "https://ping.example.run.app"
HEALTH_WATCH = "/grpc.health.v1.Health/Watch"
# The watch's deadline: the stream must open within it on a busy machine (see its test).
WATCH_SECONDS = 3


class JavaClientTest(absltest.TestCase):
    @classmethod
    def setUpClass(cls) -> None:
        cls.scratch = Path(tempfile.mkdtemp(dir=os.environ.get("TEST_TMPDIR")))
        cls.pki = Pki(cls.scratch / "pki")
        cls.google = FakeGoogle()
        cls.verifying = Server(
            "--auth_mode=verify",
            f"--audiences={AUDIENCE}",
            f"--google_certs_url={cls.google.url}/certs",
            binary_var=PING_SERVER,
        )
        cls.ping = Server(binary_var=PING_SERVER)
        cls.route_guide = Server(binary_var=ROUTE_GUIDE_SERVER)
        cls.tls = Server(
            f"--tls_cert_file={cls.pki.server_cert}",
            f"--tls_key_file={cls.pki.server_key}",
            binary_var=PING_SERVER,
        )

    @classmethod
    def tearDownClass(cls) -> None:
        for server in (cls.tls, cls.route_guide, cls.ping, cls.verifying):
            server.stop()
        cls.google.close()

    def java(self, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        return run(JAVA_CLIENT, *args, input=stdin)

    def both(
        self,
        *args: str,
        server: Server,
        stdin: str | None = None,
        comparable: Callable[[str], str] = lambda out: out,
    ) -> str:
        """Runs the Java and the Python client alike (flags after the subcommand for Java,
        before it for Python); both succeed with the same output (once `comparable` has left
        out what may differ), which is returned."""
        flags = [f"--server={server.address}", "--insecure"]
        java = self.java(*args, *flags, stdin=stdin)
        self.assertEqual(java.returncode, 0, java.stderr)
        self.assertEqual(java.stderr, "")
        python = run(PYTHON_CLIENT, *flags, *args, input=stdin)
        self.assertEqual(python.returncode, 0, python.stderr)
        self.assertEqual(comparable(java.stdout), comparable(python.stdout))
        return java.stdout

    def test_unary(self) -> None:
        out = self.both("get-feature", "370000000,-1229500000", server=self.route_guide)
        self.assertIn('name: "South Mill Camp"', out)

    def test_server_streaming(self) -> None:
        out = self.both(
            "list-features",
            "370000000,-1230000000",
            "380000000,-1215000000",
            server=self.route_guide,
        )
        self.assertGreater(len(out.splitlines()), 10)

    def test_client_streaming(self) -> None:
        # elapsed_time is the server's clock from the first point to the end, in whole seconds:
        # 0 (left out of the text) unless a client is slow to send, as on a loaded machine,
        # where one client's 1 against the other's 0 failed the comparison.
        out = self.both(
            "record-route",
            "370000000,-1229500000",
            "370000000,-1228000000",
            server=self.route_guide,
            comparable=lambda out: re.sub(r" elapsed_time: \d+", "", out),
        )
        self.assertIn("point_count: 2 feature_count: 2", out)

    def test_bidirectional_streaming(self) -> None:
        notes = "1.0,1.0:first\n1.0,1.0:second\n2.0,2.0:third\n"
        out = self.both("chat", server=self.route_guide, stdin=notes)
        self.assertIn("first", out)

    def test_ping_and_flags_before_the_subcommand(self) -> None:
        result = self.java(f"--server={self.ping.address}", "--insecure", "ping", "--message=héllo")
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertRegex(result.stdout, r'^pong \{ index: \d+ message: "héllo" received_on \{')

    def test_health(self) -> None:
        self.assertEqual(self.both("health", server=self.ping), "status: SERVING\n")
        missing = self.java(
            "health", "--service=nope", f"--server={self.ping.address}", "--insecure"
        )
        self.assertEqual(missing.returncode, 1)
        self.assertEqual(missing.stderr, "client: NOT_FOUND: unknown service 'nope'\n")

    def test_tls_with_a_private_ca(self) -> None:
        # TLS with ALPN through netty-tcnative (Debian's Netty has no JDK ALPN).
        flags = [f"--server={self.tls.address}", f"--ca_cert={self.pki.ca_cert}"]
        result = self.java("ping", *flags)
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertIn("pong {", result.stdout)
        untrusted = self.java("ping", f"--server={self.tls.address}")  # the JVM's roots
        self.assertEqual(untrusted.returncode, 1)
        self.assertTrue(untrusted.stderr.startswith("client: UNAVAILABLE: "), untrusted.stderr)
        self.assertLen(untrusted.stderr.splitlines(), 1)

    def test_relay_failure_as_the_python_client_says_it(self) -> None:
        flags = [f"--server={self.ping.address}", "--insecure"]
        java = self.java("relay", *flags)
        python = run(PYTHON_CLIENT, *flags, "relay")
        self.assertEqual((java.returncode, java.stderr), (1, python.stderr))
        self.assertTrue(java.stderr.startswith("client: FAILED_PRECONDITION: "), java.stderr)

    def test_record_route_of_known_places(self) -> None:
        # Without points the Java client walks features it lists first (it has no map file).
        flags = [f"--server={self.route_guide.address}", "--insecure"]
        result = self.java("record-route", *flags)
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertRegex(result.stdout, r"^point_count: [1-9]\d* feature_count: [1-9]")

    def test_id_token_from_a_file(self) -> None:
        token = self.scratch / "token"
        token.write_text(self.google.id_token(AUDIENCE) + "\n")
        flags = [f"--server={self.verifying.address}", "--insecure"]
        result = self.java("ping", f"--token_file={token}", *flags)
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertIn("pong {", result.stdout)
        without = self.java("ping", *flags)
        self.assertEqual(without.returncode, 1)
        self.assertTrue(without.stderr.startswith("client: UNAUTHENTICATED: "), without.stderr)

    def test_tls_names_the_server_it_trusts(self) -> None:
        # The certificate is for localhost: another name fails the handshake.
        result = self.java(
            "ping",
            f"--server={self.tls.address}",
            f"--ca_cert={self.pki.ca_cert}",
            "--authority=wrong.example",
        )
        self.assertEqual(result.returncode, 1)
        self.assertTrue(result.stderr.startswith("client: UNAVAILABLE: "), result.stderr)
        self.assertLen(result.stderr.splitlines(), 1)

    def watch_codes(self) -> list[str]:
        """The codes the ping server logged for Health/Watch calls so far."""
        return [e["code"] for e in self.ping.logs() if e.get("method") == HEALTH_WATCH]

    def assert_ping_answers(self) -> None:
        self.assertEqual(self.both("health", server=self.ping), "status: SERVING\n")
        self.assertIsNone(self.ping.process.poll())

    def test_watch_ended_by_its_deadline_mid_stream(self) -> None:
        # --watch_seconds is the stream's deadline: it passes while the stream is open, which
        # the client counts as done and the server logs as DEADLINE_EXCEEDED, on a busy
        # machine too (.ci/stress), where the cold JVM's cancel came up to 0.1 s before the
        # server's copy of the deadline ran out. The client counts it from a connected channel.
        before = len(self.watch_codes())
        flags = [f"--server={self.ping.address}", "--insecure"]
        result = self.java("health", "--watch", f"--watch_seconds={WATCH_SECONDS}", *flags)
        opened = "the stream opened within the deadline"
        self.assertEqual((result.returncode, result.stdout), (0, "status: SERVING\n"), opened)
        self.ping.wait_for_logs(lambda e: e.get("method") == HEALTH_WATCH, before + 1)
        self.assertEqual(self.watch_codes()[before:], ["DEADLINE_EXCEEDED"])
        self.assert_ping_answers()

    def test_client_killed_in_the_middle_of_a_stream(self) -> None:
        # Ctrl-C, or the kill of a pipeline, while a stream is open: the server logs the call
        # cancelled and goes on answering.
        before = len(self.watch_codes())
        client = subprocess.Popen(
            [
                binary(JAVA_CLIENT),
                "health",
                "--watch",
                f"--server={self.ping.address}",
                "--insecure",
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        self.addCleanup(client.kill)
        assert client.stdout is not None
        with cpu_hog():
            self.assertEqual(client.stdout.readline(), "status: SERVING\n")  # the stream is open
            client.send_signal(signal.SIGKILL)
            client.wait(timeout=30)
        self.ping.wait_for_logs(lambda e: e.get("method") == HEALTH_WATCH, before + 1)
        self.assertEqual(self.watch_codes()[before:], ["CANCELLED"])
        self.assert_ping_answers()

    def test_bad_input_is_one_line_and_exit_2(self) -> None:
        not_pem = self.scratch / "not.pem"
        not_pem.write_text("not a certificate\n")
        token = self.scratch / "some-token"
        token.write_text("t0ken\n")
        for args, stdin in [
            (("get-feature", "north,west"), None),
            (("ping", "--server=localhost:99999"), None),
            (("ping", "--timeout=soon"), None),
            (("nosuchcommand",), None),
            (("ping", "--token_file=/nonexistent/token"), None),
            (("ping", "--authority=a b", "--insecure"), None),
            (("ping", f"--ca_cert={not_pem}", f"--server={self.tls.address}"), None),
            (("ping", "--insecure", f"--token_file={token}", "--server=example.com:80"), None),
            (("chat", f"--server={self.route_guide.address}", "--insecure"), "1.0,1.0:ok\nbad\n"),
        ]:
            result = self.java(*args, stdin=stdin)
            self.assertEqual(result.returncode, 2, (args, result.stderr))
            if stdin is None:
                self.assertEqual(result.stdout, "")
            self.assertLen(result.stderr.splitlines(), 1, result.stderr)
            self.assertTrue(result.stderr.startswith("client: "), result.stderr)
            self.assertNotIn("Exception", result.stderr)

    def test_unreachable_server_is_exit_1(self) -> None:
        result = self.java("ping", "--server=localhost:1", "--insecure", "--timeout=5")
        self.assertEqual(result.returncode, 1)
        self.assertRegex(result.stderr, r"^client: (UNAVAILABLE|DEADLINE_EXCEEDED): ")
        self.assertLen(result.stderr.splitlines(), 1)


if __name__ == "__main__":
    absltest.main()
