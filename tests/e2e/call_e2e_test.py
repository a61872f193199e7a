"""`client call`, `list` and `describe` against real servers through their reflection: the four
kinds of call, requests from arguments and stdin, metadata the server reads, and each bad input's
one line. The servers are the kit's test services (tests/services/kittest, and the echo service
of the test tree), so the client is shown to hold no code of any service it calls."""

from __future__ import annotations

import json
import subprocess

from absl.testing import absltest

from tests.e2e.fake_google import FakeGoogle
from tests.e2e.processes import ECHO_SERVER, KITTEST_SERVER, Server, run

SERVICE = "kittest.v1.TestService"
SERVICE_RPCS = """\
service kittest.v1.TestService {
  rpc Unary(kittest.v1.UnaryRequest) returns (kittest.v1.UnaryResponse);  // unary
  rpc ServerStream(kittest.v1.ServerStreamRequest) returns (stream kittest.v1.ServerStreamResponse);  // server-streaming
  rpc ClientStream(stream kittest.v1.ClientStreamRequest) returns (kittest.v1.ClientStreamResponse);  // client-streaming
  rpc Bidi(stream kittest.v1.BidiRequest) returns (stream kittest.v1.BidiResponse);  // bidirectional
  rpc Relay(kittest.v1.RelayRequest) returns (kittest.v1.RelayResponse);  // unary
}
"""  # noqa: E501 (the exact output)
METHODS = "Unary, ServerStream, ClientStream, Bidi, Relay"
SERVICES = f"grpc.health.v1.Health, grpc.reflection.v1alpha.ServerReflection, {SERVICE}"
TRACE_ID = "105445aa7843bc8bf206b12000100000"
CLOUD_RUN_ENV = {
    "GOOGLE_CLOUD_PROJECT": "kit-test",
    "K_SERVICE": "kittest",
    "K_REVISION": "kittest-1",
}
SECRET = "tok3n-that-must-not-show"


def message(text: str) -> str:
    return json.dumps({"message": text})


class Client:
    """The client binary against one server, with --insecure."""

    def __init__(self, test: absltest.TestCase, server: Server) -> None:
        self._test = test
        self._server = server

    def run(self, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        return run(
            "CLIENT_BIN", f"--server={self._server.address}", "--insecure", *args, input=stdin
        )

    def json_lines(self, *args: str, stdin: str | None = None) -> list[dict]:
        result = self.run(*args, stdin=stdin)
        self._test.assertEqual(result.returncode, 0, result.stderr)
        return [json.loads(line) for line in result.stdout.splitlines()]

    def fails(self, code: int, *args: str, stdin: str | None = None) -> str:
        """The one line on stderr of a command that must exit with `code`, printing nothing."""
        result = self.run(*args, stdin=stdin)
        self._test.assertEqual(result.returncode, code, result.stderr)
        self._test.assertEqual(result.stdout, "")
        lines = result.stderr.strip().splitlines()
        self._test.assertLen(lines, 1, result.stderr)
        return lines[0]


class TestServiceTest(absltest.TestCase):
    @classmethod
    def setUpClass(cls) -> None:
        cls.server = Server(binary_var=KITTEST_SERVER)

    @classmethod
    def tearDownClass(cls) -> None:
        cls.server.stop()

    def setUp(self) -> None:
        self.client = Client(self, self.server)

    def test_list(self) -> None:
        result = self.client.run("list")
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertEqual(result.stdout.splitlines(), SERVICES.split(", "))

    def test_describe_service_method_and_message(self) -> None:
        for name in (SERVICE, "TestService"):
            result = self.client.run("describe", name)
            self.assertEqual(result.returncode, 0, result.stderr)
            self.assertEqual(result.stdout, SERVICE_RPCS)
        for name in (f"{SERVICE}/ClientStream", f"{SERVICE}.ClientStream"):
            result = self.client.run("describe", name)
            self.assertEqual(result.returncode, 0, result.stderr)
            self.assertEqual(
                result.stdout,
                f"{SERVICE}: rpc ClientStream(stream kittest.v1.ClientStreamRequest) returns"
                " (kittest.v1.ClientStreamResponse);  // client-streaming\n\n"
                "message kittest.v1.ClientStreamRequest {\n  string message = 1;\n"
                "  bytes payload = 2;\n}\n\n"
                "message kittest.v1.ClientStreamResponse {\n  int32 messages = 1;\n"
                "  int64 bytes = 2;\n}\n",
            )
        result = self.client.run("describe")
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertIn(SERVICE_RPCS, result.stdout)
        self.assertIn("service grpc.health.v1.Health {", result.stdout)

    def test_unary(self) -> None:
        for method in (f"{SERVICE}/Unary", f"{SERVICE}.Unary", "TestService/Unary"):
            with self.subTest(method):
                (response,) = self.client.json_lines("call", method, message("hello"))
                self.assertEqual(response["message"], "hello")
                self.assertGreater(int(response["index"]), 0)
        (from_stdin,) = self.client.json_lines(
            "call", "TestService/Unary", stdin=message("from stdin") + "\n"
        )
        self.assertEqual(from_stdin["message"], "from stdin")

    def test_server_streaming(self) -> None:
        listed = self.client.json_lines("call", "TestService/ServerStream", '{"count": 3}')
        # protobuf's JSON leaves a field at its default out: index 0 is {}.
        self.assertEqual(listed, [{}, {"index": 1}, {"index": 2}])

    def test_client_streaming_from_arguments_and_stdin(self) -> None:
        (summary,) = self.client.json_lines(
            "call", "TestService/ClientStream", message("a"), message("b"), "{}"
        )
        # 64-bit integers are JSON strings; each message "x" is 3 bytes on the wire.
        self.assertEqual(summary, {"messages": 3, "bytes": "6"})
        stdin = f"{message('a')}\n\n{message('b')}\n"  # a blank line is no request
        (summary,) = self.client.json_lines("call", "TestService/ClientStream", stdin=stdin)
        self.assertEqual(summary, {"messages": 2, "bytes": "6"})

    def test_bidirectional_from_stdin_and_arguments(self) -> None:
        stdin = "".join(message(m) + "\n" for m in "abc")
        # Each message gets back its answer.
        replies = self.client.json_lines("call", "TestService/Bidi", stdin=stdin)
        self.assertEqual([reply["message"] for reply in replies], ["a", "b", "c"])
        replies = self.client.json_lines("call", "TestService/Bidi", message("x"), message("y"))
        self.assertEqual([reply["message"] for reply in replies], ["x", "y"])

    def test_global_flags_after_the_subcommand_and_a_request_with_a_minus(self) -> None:
        after = (f"--server={self.server.address}", "--insecure", "--timeout=20")
        result = run("CLIENT_BIN", "call", "TestService/Unary", message("-1,-1"), *after)
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertEqual(json.loads(result.stdout)["message"], "-1,-1")
        # An argument that starts with a minus and a digit is a value (main.py's rule), even
        # where Python 3.13's argparse would call it an unknown flag: here a request that is a
        # number, not a JSON object, which the request's parser then refuses.
        result = run("CLIENT_BIN", "call", "TestService/Unary", "-1e5", *after)
        self.assertEqual(result.returncode, 2, result.stderr)
        self.assertEqual(
            result.stderr,
            "client: the request: Failed to parse JSON: TypeError: 'float' object is not"
            " iterable.\n",
        )

    def test_bad_input_is_one_line_and_exit_2(self) -> None:
        for case, args, stdin, expected in (
            (
                "unknown method",
                ("call", f"{SERVICE}/Foo", "{}"),
                None,
                f"client: no method Foo in {SERVICE}; it has: {METHODS}",
            ),
            (
                "unknown service",
                ("call", "nope.v1.Nope/Foo", "{}"),
                None,
                f"client: no service nope.v1.Nope; the server has: {SERVICES}",
            ),
            (
                "unknown symbol",
                ("describe", "kittest.v1.Nothing"),
                None,
                "client: no service, method, message or enum kittest.v1.Nothing",
            ),
            (
                "a service, no method",
                ("call", SERVICE, "{}"),
                None,
                f"client: {SERVICE} is a service; a method is SERVICE/METHOD, and it has:"
                f" {METHODS}",
            ),
            ("no method at all", ("call", "Unary", "{}"), None, "a method is SERVICE/METHOD"),
            (
                "unknown field",
                ("call", "TestService/Unary", '{"msg": 1}'),
                None,
                'client: the request: Message type "kittest.v1.UnaryRequest" has no field named'
                ' "msg" at "UnaryRequest". Available Fields(except extensions):',
            ),
            (
                "bad JSON",
                ("call", "TestService/Unary", '{"message": '),
                None,
                "client: the request: Failed to load JSON:",
            ),
            (
                "wrong type",
                ("call", "TestService/ClientStream", "{}", '{"message": 5}'),
                None,
                "client: request 2: Failed to parse message field",
            ),
            (
                "two requests to a unary method",
                ("call", "TestService/Unary", "{}", "{}"),
                None,
                f"client: {SERVICE}.Unary is unary: it takes one request",
            ),
            (
                "no request on stdin",
                ("call", "TestService/ServerStream"),
                "\n",
                "server-streaming: it takes one request, as an argument ('{}' for an empty one)"
                " or as one JSON line on stdin; stdin had 0 lines",
            ),
            (
                "a bad line on stdin, unary",
                ("call", "TestService/Unary"),
                "[1]\n",
                "client: stdin line 1: ",
            ),
        ):
            with self.subTest(case):
                self.assertIn(expected, self.client.fails(2, *args, stdin=stdin))

    def test_a_bad_line_in_a_request_stream_cancels_the_call(self) -> None:
        stdin = f'{message("first")}\n{{"message": }}\n{{}}\n'
        for method, printed in (
            ("ClientStream", ("",)),
            # Bidi may answer the first request before the bad line cancels the call.
            ("Bidi", ("", '{"message": "first"}\n')),
        ):
            with self.subTest(method):
                result = self.client.run("call", f"TestService/{method}", stdin=stdin)
                self.assertEqual(result.returncode, 2, result.stderr)
                self.assertIn(result.stdout, printed)
                self.assertRegex(
                    result.stderr, r"^client: stdin line 2: Failed to load JSON: [^\n]*\n$"
                )
                # The server saw the stream cancelled, never ended as if it were whole.
                logged = self.server.wait_for_log(
                    lambda entry, m=method: (
                        entry.get("method") == f"/{SERVICE}/{m}" and entry.get("code") != "OK"
                    )
                )
                self.assertEqual(logged["code"], "CANCELLED")
        self.assertNotIn(
            "OK",
            [e.get("code") for e in self.server.logs() if "ClientStream" in e.get("method", "")],
        )
        # And it still answers.
        (summary,) = self.client.json_lines("call", "TestService/ClientStream", "{}")
        self.assertEqual(summary["messages"], 1)


class HeadersTest(absltest.TestCase):
    """Metadata the server reads (-H), and headers refused."""

    def test_unary_and_a_trace_header_the_server_logs(self) -> None:
        with Server(env=CLOUD_RUN_ENV, binary_var=KITTEST_SERVER) as server:
            client = Client(self, server)
            (response,) = client.json_lines(
                "-H",
                f"X-Cloud-Trace-Context: {TRACE_ID}/1;o=1",  # any case: sent lowercase
                "call",
                f"{SERVICE}/Unary",
                message("hello"),
                "-H",
                "x-other-bin: AAEC/w",  # base64 without padding
            )
            self.assertEqual(response["message"], "hello")
            entry = server.wait_for_log(lambda e: e.get("method") == f"/{SERVICE}/Unary")
            self.assertEqual(
                entry["logging.googleapis.com/trace"], f"projects/kit-test/traces/{TRACE_ID}"
            )

    def test_authorization_header_reaches_the_auth_policy_and_never_shows(self) -> None:
        google = FakeGoogle()
        self.addCleanup(google.close)
        allowed = "caller@example.iam.gserviceaccount.com"
        header, payload, _ = google.id_token("https://kittest.example").split(".")
        token = f"{header}.{payload}.SIGNATURE_REMOVED"
        stranger = google.id_token("https://kittest.example", email="x@example.com")
        send = ("call", "TestService/Unary", message("let in"))
        with Server(
            "--auth_mode=cloud-run", f"--allowed_invokers={allowed}", binary_var=KITTEST_SERVER
        ) as server:
            client = Client(self, server)
            # Reflection stays open; the method does not.
            line = client.fails(1, *send)
            self.assertTrue(line.startswith("client: UNAUTHENTICATED:"), line)
            (response,) = client.json_lines(*send, "-H", f"authorization: Bearer {token}")
            self.assertEqual(response["message"], "let in")
            self.assertEqual(server.wait_for_log(lambda e: "caller" in e)["caller"], allowed)
            line = client.fails(1, *send, "-H", f"Authorization: Bearer {stranger}")
            self.assertTrue(line.startswith("client: PERMISSION_DENIED:"), line)
            self.assertNotIn(stranger, line)
            self.assertNotIn(stranger, "\n".join(server.lines + server.stderr_lines))

    def test_bad_headers_are_refused_without_their_values(self) -> None:
        with Server(binary_var=KITTEST_SERVER) as server:
            client = Client(self, server)
            for header, expected in (
                (f"authorization Bearer {SECRET}", "has no colon"),
                (f"Bearer {SECRET}: x", "character 7 of this one is ' '"),
                (f": {SECRET}", "a header needs a name before its colon"),
                (f"grpc-timeout: {SECRET}", "names starting grpc- are gRPC's own"),
                (f"x-key-bin: {SECRET}!", "header x-key-bin: the value of a -bin header is"),
                (f"x-key: {SECRET}\u00e9", "header x-key: a value must be printable ASCII"),
            ):
                for side in ("before", "after"):
                    with self.subTest(header=expected, side=side):
                        flag = ("-H", header)
                        args = (*flag, "list") if side == "before" else ("list", *flag)
                        line = client.fails(2, *args)
                        self.assertTrue(line.startswith("client: argument -H/--header: "), line)
                        self.assertIn(expected, line)
                        self.assertNotIn(SECRET, line)
            # The same check guards the subcommands on generated code.
            self.assertIn("has no colon", client.fails(2, "health", "-H", SECRET))
            (status,) = client.json_lines("--json", "health", "-H", "x-fine: yes")
            self.assertEqual(status, {"status": "SERVING"})


class NoReflectionTest(absltest.TestCase):
    def test_a_server_without_reflection_is_one_line_and_exit_1(self) -> None:
        with Server("--noreflection", binary_var=KITTEST_SERVER) as server:
            client = Client(self, server)
            for args in (("list",), ("describe",), ("call", f"{SERVICE}/Unary", "{}")):
                with self.subTest(args[0]):
                    self.assertEqual(
                        client.fails(1, *args),
                        "client: UNIMPLEMENTED: the server does not serve reflection"
                        " (grpc.reflection.v1alpha.ServerReflection), which call, list and describe"
                        " need (a kit server started with --noreflection?)",
                    )
            # The subcommands with generated code still work.
            (status,) = client.json_lines("--json", "health")
            self.assertEqual(status, {"status": "SERVING"})


class EchoServiceTest(absltest.TestCase):
    """A service of the test tree only, whose messages cross proto files and use well-known
    types (Duration, Timestamp): nothing in the client knows it."""

    def test_call_and_describe(self) -> None:
        with Server(binary_var=ECHO_SERVER) as server:
            client = Client(self, server)
            pong = {"index": 7, "message": "echo", "receivedOn": "2026-01-02T03:04:05Z"}
            request = json.dumps({"pong": pong, "delay": "0.010s"})
            self.assertEqual(client.json_lines("call", "echo.v1.EchoService/Echo", request), [pong])
            result = client.run("describe", "echo.v1.EchoRequest")
            self.assertEqual(result.returncode, 0, result.stderr)
            self.assertEqual(
                result.stdout,
                "message echo.v1.EchoRequest {\n  pong.v1.Pong pong = 1;\n"
                "  google.protobuf.Duration delay = 2;\n}\n",
            )
            line = client.fails(2, "call", "EchoService/Echo", '{"delay": "soon"}')
            self.assertIn("client: the request: Failed to parse delay field", line)


if __name__ == "__main__":
    absltest.main()
