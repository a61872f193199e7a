"""The kit's Java client (//java/client: the global flags and health) against the kit's test
service (tests/services/kittest): health as the kit's Python client prints it (each client's
text format parsed back: their words differ), a watch ended by its deadline or by a killed
client, and bad flags. The samples' Java clients, built on the same library, are tested beside
them (python/services/ping/java: TLS and tokens; python/services/route_guide/java: every RPC
kind)."""

from __future__ import annotations

import signal
import subprocess
from pathlib import Path

from absl.testing import absltest
from grpc_health.v1 import health_pb2

from tests.e2e.cpu_hog import cpu_hog
from tests.e2e.processes import KITTEST_SERVER, Server, binary, run
from tests.java.text_lines import Line, parse_lines

JAVA_CLIENT = "JAVA_CLIENT_BIN"
PYTHON_CLIENT = "CLIENT_BIN"  # the kit's (python/client)
HEALTH_WATCH = "/grpc.health.v1.Health/Watch"
# The watch's deadline: the stream must open within it on a busy machine (see its test).
WATCH_SECONDS = 3
SERVING = [
    Line(health_pb2.HealthCheckResponse(status=health_pb2.HealthCheckResponse.SERVING), None)
]


class JavaClientTest(absltest.TestCase):
    @classmethod
    def setUpClass(cls) -> None:
        cls.server = Server(binary_var=KITTEST_SERVER)

    @classmethod
    def tearDownClass(cls) -> None:
        cls.server.stop()

    def java(self, *args: str) -> subprocess.CompletedProcess[str]:
        return run(JAVA_CLIENT, *args)

    def both_health(self) -> list[Line]:
        """Health from the Java and the Python client alike (flags after the subcommand for
        Java, before it for Python): both succeed, and their lines parse to the same
        responses. Returns the Java client's lines."""
        flags = [f"--server={self.server.address}", "--insecure"]
        java = self.java("health", *flags)
        self.assertEqual(java.returncode, 0, java.stderr)
        self.assertEqual(java.stderr, "")
        python = run(PYTHON_CLIENT, *flags, "health")
        self.assertEqual(python.returncode, 0, python.stderr)
        response = health_pb2.HealthCheckResponse
        lines = parse_lines(java.stdout, response)
        self.assertEqual(lines, parse_lines(python.stdout, response))
        return lines

    def test_health(self) -> None:
        self.assertEqual(self.both_health(), SERVING)
        missing = self.java(
            "health", "--service=nope", f"--server={self.server.address}", "--insecure"
        )
        self.assertEqual(missing.returncode, 1)
        self.assertEqual(missing.stderr, "client: NOT_FOUND: unknown service 'nope'\n")

    def watch_codes(self) -> list[str]:
        """The codes the server logged for Health/Watch calls so far."""
        return [e["code"] for e in self.server.logs() if e.get("method") == HEALTH_WATCH]

    def assert_server_answers(self) -> None:
        self.assertEqual(self.both_health(), SERVING)
        self.assertIsNone(self.server.process.poll())

    def test_watch_ended_by_its_deadline_mid_stream(self) -> None:
        # --watch_seconds is the stream's deadline: it passes while the stream is open, which
        # the client counts as done and the server logs as DEADLINE_EXCEEDED, on a busy
        # machine too (.ci/stress), where the cold JVM's cancel came up to 0.1 s before the
        # server's copy of the deadline ran out. The client counts it from a connected channel.
        before = len(self.watch_codes())
        flags = [f"--server={self.server.address}", "--insecure"]
        result = self.java("health", "--watch", f"--watch_seconds={WATCH_SECONDS}", *flags)
        opened = "the stream opened within the deadline"
        self.assertEqual(result.returncode, 0, opened)
        response = health_pb2.HealthCheckResponse
        self.assertEqual(parse_lines(result.stdout, response), SERVING, opened)
        self.server.wait_for_logs(lambda e: e.get("method") == HEALTH_WATCH, before + 1)
        self.assertEqual(self.watch_codes()[before:], ["DEADLINE_EXCEEDED"])
        self.assert_server_answers()

    def test_client_killed_in_the_middle_of_a_stream(self) -> None:
        # Ctrl-C, or the kill of a pipeline, while a stream is open: the server logs the call
        # cancelled and goes on answering.
        before = len(self.watch_codes())
        client = subprocess.Popen(
            [
                binary(JAVA_CLIENT),
                "health",
                "--watch",
                f"--server={self.server.address}",
                "--insecure",
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        self.addCleanup(client.kill)
        assert client.stdout is not None
        with cpu_hog():
            line = client.stdout.readline()  # the stream is open
            self.assertEqual(parse_lines(line, health_pb2.HealthCheckResponse), SERVING)
            client.send_signal(signal.SIGKILL)
            client.wait(timeout=30)
        self.server.wait_for_logs(lambda e: e.get("method") == HEALTH_WATCH, before + 1)
        self.assertEqual(self.watch_codes()[before:], ["CANCELLED"])
        self.assert_server_answers()

    def test_bad_input_is_one_line_and_exit_2(self) -> None:
        token = Path(self.create_tempdir().full_path) / "some-token"
        token.write_text("t0ken\n")
        for args in [
            ("health", "--server=localhost:99999"),
            ("health", "--timeout=soon"),
            ("nosuchcommand",),
            ("health", "--token_file=/nonexistent/token"),
            ("health", "--authority=a b", "--insecure"),
            ("health", "--insecure", f"--token_file={token}", "--server=example.com:80"),
        ]:
            result = self.java(*args)
            self.assertEqual(result.returncode, 2, (args, result.stderr))
            self.assertEqual(result.stdout, "")
            self.assertLen(result.stderr.splitlines(), 1, result.stderr)
            self.assertTrue(result.stderr.startswith("client: "), result.stderr)
            self.assertNotIn("Exception", result.stderr)

    def test_unreachable_server_is_exit_1(self) -> None:
        result = self.java("health", "--server=localhost:1", "--insecure", "--timeout=5")
        self.assertEqual(result.returncode, 1)
        self.assertRegex(result.stderr, r"^client: (UNAVAILABLE|DEADLINE_EXCEEDED): ")
        self.assertLen(result.stderr.splitlines(), 1)


if __name__ == "__main__":
    absltest.main()
