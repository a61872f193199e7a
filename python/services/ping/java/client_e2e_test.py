"""Ping's Java client (//python/services/ping/java:client) against the real ping server: ping
and relay with the same messages as ping's Python client prints (each client's text format
parsed back: their words differ), text with control characters from either side, and the
kit's flags that need a service to call: TLS with a private CA (through netty-tcnative), an ID
token from a file to a verifying server. The kit's own subcommand (health) is tested on the
kit's client (tests/java)."""

from __future__ import annotations

import os
import subprocess
import tempfile
from concurrent import futures
from pathlib import Path

import grpc
from absl.testing import absltest
from google.protobuf.message import Message
from ping.v1 import ping_pb2

from tests.e2e.fake_google import FakeGoogle, Pki
from tests.e2e.processes import PING_SERVER, Server, run
from tests.java.text_lines import Line, parse_lines, without

JAVA_CLIENT = "JAVA_CLIENT_BIN"
PYTHON_CLIENT = "CLIENT_BIN"  # ping's
AUDIENCE = "https://ping.example.run.app"
# What the ping server sets anew for each call.
PONG_PER_CALL = ("pong.index", "pong.received_on")


class PingJavaClientTest(absltest.TestCase):
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
        cls.tls = Server(
            f"--tls_cert_file={cls.pki.server_cert}",
            f"--tls_key_file={cls.pki.server_key}",
            binary_var=PING_SERVER,
        )

    @classmethod
    def tearDownClass(cls) -> None:
        for server in (cls.tls, cls.ping, cls.verifying):
            server.stop()
        cls.google.close()

    def java(self, *args: str) -> subprocess.CompletedProcess[str]:
        return run(JAVA_CLIENT, *args)

    def both(self, *args: str, differing: tuple[str, ...] = ()) -> list[Line]:
        """Runs the Java and the Python client alike against the ping server (flags after the
        subcommand for Java, before it for Python); both succeed, and their lines parse to the
        same responses (once the `differing` fields are cleared). Returns the Java client's."""
        flags = [f"--server={self.ping.address}", "--insecure"]
        java = self.java(*args, *flags)
        self.assertEqual(java.returncode, 0, java.stderr)
        self.assertEqual(java.stderr, "")
        python = run(PYTHON_CLIENT, *flags, *args)
        self.assertEqual(python.returncode, 0, python.stderr)
        lines = parse_lines(java.stdout, ping_pb2.Response)
        python_lines = parse_lines(python.stdout, ping_pb2.Response)
        self.assertEqual(without(lines, differing), without(python_lines, differing))
        return lines

    def java_lines(self, *args: str, response: type[Message]) -> list[Line]:
        """The Java client's lines, once it has succeeded with nothing on stderr."""
        result = self.java(*args)
        self.assertEqual((result.returncode, result.stderr), (0, ""))
        return parse_lines(result.stdout, response)

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
        lines = self.both("ping", f"--message={text}", differing=PONG_PER_CALL)
        self.assertEqual([line.message.pong.message for line in lines], [text])
        flags = [f"--server={self.ping.address}", "--insecure"]
        for client, argv in ((JAVA_CLIENT, ["ping", *flags]), (PYTHON_CLIENT, [*flags, "ping"])):
            raw = run(client, *argv, f"--message={text}")
            self.assertEqual(raw.returncode, 0, raw.stderr)
            self.assertRegex(raw.stdout, r"^[^\x00-\x1f\x7f-\x9f]*\n$", client)

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
        python = run(PYTHON_CLIENT, *flags, "relay")
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
        python = run(PYTHON_CLIENT, *flags, "ping")
        line = "client: PERMISSION_DENIED: E\\033]0;pwned\\007vil\\302\\2332J\n"
        self.assertEqual((java.returncode, java.stdout, java.stderr), (1, "", line))
        self.assertEqual((python.returncode, python.stdout, python.stderr), (1, "", line))

    def test_id_token_from_a_file(self) -> None:
        token = self.scratch / "token"
        token.write_text(self.google.id_token(AUDIENCE) + "\n")
        flags = [f"--server={self.verifying.address}", "--insecure"]
        lines = self.java_lines("ping", f"--token_file={token}", *flags, response=ping_pb2.Response)
        self.assertEqual([line.message.HasField("pong") for line in lines], [True])
        without_token = self.java("ping", *flags)
        self.assertEqual(without_token.returncode, 1)
        self.assertTrue(
            without_token.stderr.startswith("client: UNAUTHENTICATED: "), without_token.stderr
        )

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

    def test_a_ca_file_that_is_no_certificate_is_one_line_and_exit_2(self) -> None:
        not_pem = self.scratch / "not.pem"
        not_pem.write_text("not a certificate\n")
        result = self.java("ping", f"--ca_cert={not_pem}", f"--server={self.tls.address}")
        self.assertEqual(result.returncode, 2, result.stderr)
        self.assertEqual(result.stdout, "")
        self.assertLen(result.stderr.splitlines(), 1, result.stderr)
        self.assertTrue(result.stderr.startswith("client: "), result.stderr)
        self.assertNotIn("Exception", result.stderr)
        self.assertIsNone(self.tls.process.poll())


if __name__ == "__main__":
    absltest.main()
