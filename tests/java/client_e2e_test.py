"""The Java client (//java/client) against the real Python servers: every RPC kind of
RouteGuide, ping, health, TLS with a private CA (through netty-tcnative), bad input, and the
same messages as the Python client prints for the same calls (each client's text format parsed
back: their words differ), which shows both languages' stubs, built from the same proto_library
targets, agree with the services."""

from __future__ import annotations

import os
import signal
import subprocess
import tempfile
from concurrent import futures
from pathlib import Path

import grpc
from absl.testing import absltest
from google.protobuf.message import Message
from grpc_health.v1 import health_pb2
from ping.v1 import ping_pb2
from routeguide.v1 import route_guide_pb2

from tests.e2e.cpu_hog import cpu_hog
from tests.e2e.fake_google import FakeGoogle, Pki
from tests.e2e.processes import PING_SERVER, ROUTE_GUIDE_SERVER, Server, binary, run
from tests.java.text_lines import Line, parse_lines, without

JAVA_CLIENT = "JAVA_CLIENT_BIN"
# Each sample has its own Python client: the kit's subcommands and the sample's own.
PING_CLIENT = "PING_CLIENT_BIN"
ROUTE_GUIDE_CLIENT = "ROUTE_GUIDE_CLIENT_BIN"
AUDIENCE = "https://ping.example.run.app"
HEALTH_WATCH = "/grpc.health.v1.Health/Watch"
# The watch's deadline: the stream must open within it on a busy machine (see its test).
WATCH_SECONDS = 3
SERVING = [
    Line(health_pb2.HealthCheckResponse(status=health_pb2.HealthCheckResponse.SERVING), None)
]
# What the ping server sets anew for each call.
PONG_PER_CALL = ("pong.index", "pong.received_on")


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
        response: type[Message],
        stdin: str | None = None,
        differing: tuple[str, ...] = (),
    ) -> list[Line]:
        """Runs the Java and the Python client alike (flags after the subcommand for Java,
        before it for Python); both succeed, and their lines parse to the same `response`
        messages with the same degrees comments (once the `differing` fields are cleared).
        Returns the Java client's lines."""
        flags = [f"--server={server.address}", "--insecure"]
        java = self.java(*args, *flags, stdin=stdin)
        self.assertEqual(java.returncode, 0, java.stderr)
        self.assertEqual(java.stderr, "")
        python_client = ROUTE_GUIDE_CLIENT if server is self.route_guide else PING_CLIENT
        python = run(python_client, *flags, *args, input=stdin)
        self.assertEqual(python.returncode, 0, python.stderr)
        lines = parse_lines(java.stdout, response)
        python_lines = parse_lines(python.stdout, response)
        self.assertEqual(without(lines, differing), without(python_lines, differing))
        return lines

    def java_lines(self, *args: str, response: type[Message]) -> list[Line]:
        """The Java client's lines, once it has succeeded with nothing on stderr."""
        result = self.java(*args)
        self.assertEqual((result.returncode, result.stderr), (0, ""))
        return parse_lines(result.stdout, response)

    def test_unary(self) -> None:
        lines = self.both(
            "get-feature",
            "370000000,-1229500000",
            server=self.route_guide,
            response=route_guide_pb2.Feature,
        )
        self.assertEqual([line.message.name for line in lines], ["South Mill Camp"])
        self.assertEqual(lines[0].degrees, "location 37.0,-122.95")

    def test_server_streaming(self) -> None:
        lines = self.both(
            "list-features",
            "370000000,-1230000000",
            "380000000,-1215000000",
            server=self.route_guide,
            response=route_guide_pb2.Feature,
        )
        self.assertGreater(len(lines), 10)

    def test_client_streaming(self) -> None:
        # elapsed_time is the server's clock from the first point to the end, in whole seconds:
        # 0 unless a client is slow to send, as on a loaded machine, where one client's 1
        # against the other's 0 failed the comparison.
        lines = self.both(
            "record-route",
            "370000000,-1229500000",
            "370000000,-1228000000",
            server=self.route_guide,
            response=route_guide_pb2.RouteSummary,
            differing=("elapsed_time",),
        )
        self.assertLen(lines, 1)
        self.assertEqual((lines[0].message.point_count, lines[0].message.feature_count), (2, 2))

    def test_bidirectional_streaming(self) -> None:
        notes = "1.0,1.0:first\n1.0,1.0:second\n2.0,2.0:third\n"
        lines = self.both(
            "chat", server=self.route_guide, response=route_guide_pb2.RouteNote, stdin=notes
        )
        self.assertEqual([line.message.message for line in lines], ["first"])

    def test_ping_and_flags_before_the_subcommand(self) -> None:
        flags = (f"--server={self.ping.address}", "--insecure")
        lines = self.java_lines(*flags, "ping", "--message=héllo", response=ping_pb2.Response)
        self.assertLen(lines, 1)
        pong = lines[0].message.pong
        self.assertEqual(pong.message, "héllo")
        self.assertGreater(pong.index, 0)
        self.assertTrue(pong.HasField("received_on"))

    def test_text_with_quotes_backslashes_and_control_characters(self) -> None:
        # Each client escapes its own way (protobuf-java writes \011 for a tab, Python \t): both
        # lines parse back to the text sent, é as it is. No control character reaches the
        # terminal: not an escape sequence, a carriage return, DEL or a C1 control (CSI).
        text = 'say "hi" \\ héllo\nnext\x01\tend \x1b[31mred\r\x7f\u009b2J'
        lines = self.both(
            "ping",
            f"--message={text}",
            server=self.ping,
            response=ping_pb2.Response,
            differing=PONG_PER_CALL,
        )
        self.assertEqual([line.message.pong.message for line in lines], [text])
        flags = [f"--server={self.ping.address}", "--insecure"]
        for client, argv in ((JAVA_CLIENT, ["ping", *flags]), (PING_CLIENT, [*flags, "ping"])):
            raw = run(client, *argv, f"--message={text}")
            self.assertEqual(raw.returncode, 0, raw.stderr)
            self.assertRegex(raw.stdout, r"^[^\x00-\x1f\x7f-\x9f]*\n$", client)

    def test_health(self) -> None:
        response = health_pb2.HealthCheckResponse
        self.assertEqual(self.both("health", server=self.ping, response=response), SERVING)
        missing = self.java(
            "health", "--service=nope", f"--server={self.ping.address}", "--insecure"
        )
        self.assertEqual(missing.returncode, 1)
        self.assertEqual(missing.stderr, "client: NOT_FOUND: unknown service 'nope'\n")

    def test_tls_with_a_private_ca(self) -> None:
        # TLS with ALPN through netty-tcnative (Debian's Netty has no JDK ALPN).
        flags = [f"--server={self.tls.address}", f"--ca_cert={self.pki.ca_cert}"]
        lines = self.java_lines("ping", *flags, response=ping_pb2.Response)
        self.assertEqual([line.message.HasField("pong") for line in lines], [True])
        untrusted = self.java("ping", f"--server={self.tls.address}")  # the JVM's roots
        self.assertEqual(untrusted.returncode, 1)
        self.assertTrue(untrusted.stderr.startswith("client: UNAVAILABLE: "), untrusted.stderr)
        self.assertLen(untrusted.stderr.splitlines(), 1)

    def test_relay_failure_as_the_python_client_says_it(self) -> None:
        flags = [f"--server={self.ping.address}", "--insecure"]
        java = self.java("relay", *flags)
        python = run(PING_CLIENT, *flags, "relay")
        self.assertEqual((java.returncode, java.stderr), (1, python.stderr))
        self.assertTrue(java.stderr.startswith("client: FAILED_PRECONDITION: "), java.stderr)

    def test_a_servers_control_characters_in_an_error_are_escaped_as_in_python(self) -> None:
        # ESC ] ... BEL sets a terminal's title; U+009B is CSI: each as its octal UTF-8 bytes.
        hostile = "E\x1b]0;pwned\x07vil\x9b2J"

        def refuse(_request: bytes, context: grpc.ServicerContext) -> bytes:
            context.abort(grpc.StatusCode.PERMISSION_DENIED, hostile)

        server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
        send = {"Send": grpc.unary_unary_rpc_method_handler(refuse)}
        server.add_generic_rpc_handlers(
            (grpc.method_handlers_generic_handler("ping.v1.PingService", send),)
        )
        flags = [f"--server=127.0.0.1:{server.add_insecure_port('127.0.0.1:0')}", "--insecure"]
        server.start()
        self.addCleanup(server.stop, None)
        java = self.java("ping", *flags)
        python = run(PING_CLIENT, *flags, "ping")
        line = "client: PERMISSION_DENIED: E\\033]0;pwned\\007vil\\302\\2332J\n"
        self.assertEqual((java.returncode, java.stdout, java.stderr), (1, "", line))
        self.assertEqual((python.returncode, python.stdout, python.stderr), (1, "", line))

    def test_record_route_of_known_places(self) -> None:
        # Without points the Java client walks features it lists first (it has no map file).
        flags = [f"--server={self.route_guide.address}", "--insecure"]
        lines = self.java_lines("record-route", *flags, response=route_guide_pb2.RouteSummary)
        self.assertLen(lines, 1)
        self.assertGreater(lines[0].message.point_count, 0)
        self.assertGreater(lines[0].message.feature_count, 0)

    def test_id_token_from_a_file(self) -> None:
        token = self.scratch / "token"
        token.write_text(self.google.id_token(AUDIENCE) + "\n")
        flags = [f"--server={self.verifying.address}", "--insecure"]
        lines = self.java_lines("ping", f"--token_file={token}", *flags, response=ping_pb2.Response)
        self.assertEqual([line.message.HasField("pong") for line in lines], [True])
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
        response = health_pb2.HealthCheckResponse
        self.assertEqual(self.both("health", server=self.ping, response=response), SERVING)
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
        self.assertEqual(result.returncode, 0, opened)
        response = health_pb2.HealthCheckResponse
        self.assertEqual(parse_lines(result.stdout, response), SERVING, opened)
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
            line = client.stdout.readline()  # the stream is open
            self.assertEqual(parse_lines(line, health_pb2.HealthCheckResponse), SERVING)
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
