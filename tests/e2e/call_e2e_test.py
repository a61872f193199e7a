"""`client call`, `list` and `describe` against real servers through their reflection: the four
kinds of call, requests from arguments and stdin, metadata the server reads, and each bad input's
one line. The kit's test-only echo service proves the client holds no code of a sample service."""

from __future__ import annotations

import json
import subprocess

from absl.testing import absltest

from python.services.route_guide.feature_db import FeatureDb
from tests.e2e.fake_google import FakeGoogle
from tests.e2e.processes import ECHO_SERVER, PING_SERVER, ROUTE_GUIDE_SERVER, Server, run

FEATURES = FeatureDb.load()
ROUTE_GUIDE = "routeguide.v1.RouteGuide"
ROUTE_GUIDE_RPCS = """\
service routeguide.v1.RouteGuide {
  rpc GetFeature(routeguide.v1.Point) returns (routeguide.v1.Feature);  // unary
  rpc ListFeatures(routeguide.v1.Rectangle) returns (stream routeguide.v1.Feature);  // server-streaming
  rpc RecordRoute(stream routeguide.v1.Point) returns (routeguide.v1.RouteSummary);  // client-streaming
  rpc RouteChat(stream routeguide.v1.RouteNote) returns (stream routeguide.v1.RouteNote);  // bidirectional
}
"""  # noqa: E501 (the exact output)
TRACE_ID = "105445aa7843bc8bf206b12000100000"
CLOUD_RUN_ENV = {"GOOGLE_CLOUD_PROJECT": "kit-test", "K_SERVICE": "ping", "K_REVISION": "ping-1"}
SECRET = "tok3n-that-must-not-show"


def point(latitude: int, longitude: int) -> str:
    return json.dumps({"latitude": latitude, "longitude": longitude})


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


class RouteGuideTest(absltest.TestCase):
    @classmethod
    def setUpClass(cls) -> None:
        cls.server = Server(binary_var=ROUTE_GUIDE_SERVER)

    @classmethod
    def tearDownClass(cls) -> None:
        cls.server.stop()

    def setUp(self) -> None:
        self.client = Client(self, self.server)

    def test_list(self) -> None:
        result = self.client.run("list")
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertEqual(
            result.stdout.splitlines(),
            ["grpc.health.v1.Health", "grpc.reflection.v1alpha.ServerReflection", ROUTE_GUIDE],
        )

    def test_describe_service_method_and_message(self) -> None:
        for name in (ROUTE_GUIDE, "RouteGuide"):
            result = self.client.run("describe", name)
            self.assertEqual(result.returncode, 0, result.stderr)
            self.assertEqual(result.stdout, ROUTE_GUIDE_RPCS)
        for name in (f"{ROUTE_GUIDE}/RecordRoute", f"{ROUTE_GUIDE}.RecordRoute"):
            result = self.client.run("describe", name)
            self.assertEqual(result.returncode, 0, result.stderr)
            self.assertEqual(
                result.stdout,
                f"{ROUTE_GUIDE}: rpc RecordRoute(stream routeguide.v1.Point) returns"
                " (routeguide.v1.RouteSummary);  // client-streaming\n\n"
                "message routeguide.v1.Point {\n  int32 latitude = 1;\n  int32 longitude = 2;\n}"
                "\n\nmessage routeguide.v1.RouteSummary {\n  int32 point_count = 1;\n"
                "  int32 feature_count = 2;\n  int32 distance = 3;\n  int32 elapsed_time = 4;\n}\n",
            )
        result = self.client.run("describe")
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertIn(ROUTE_GUIDE_RPCS, result.stdout)
        self.assertIn("service grpc.health.v1.Health {", result.stdout)

    def test_unary(self) -> None:
        feature = next(FEATURES.within_all())
        where = point(feature.location.latitude, feature.location.longitude)
        for method in (
            f"{ROUTE_GUIDE}/GetFeature",
            f"{ROUTE_GUIDE}.GetFeature",
            "RouteGuide/GetFeature",
        ):
            with self.subTest(method):
                (response,) = self.client.json_lines("call", method, where)
                self.assertEqual(response["name"], feature.name)
                self.assertEqual(response["location"]["latitude"], feature.location.latitude)
        (from_stdin,) = self.client.json_lines("call", "RouteGuide/GetFeature", stdin=where + "\n")
        self.assertEqual(from_stdin["name"], feature.name)

    def test_server_streaming(self) -> None:
        rectangle = {
            "lo": {"latitude": 370000000, "longitude": -1230000000},
            "hi": {"latitude": 380000000, "longitude": -1215000000},
        }
        listed = self.client.json_lines("call", "RouteGuide/ListFeatures", json.dumps(rectangle))
        self.assertLen(listed, len(FEATURES))
        self.assertTrue(all(entry["name"] for entry in listed))

    def test_client_streaming_from_arguments_and_stdin(self) -> None:
        feature = next(FEATURES.within_all())
        known = point(feature.location.latitude, feature.location.longitude)
        (summary,) = self.client.json_lines("call", "RouteGuide/RecordRoute", known, known, "{}")
        self.assertEqual((summary["pointCount"], summary["featureCount"]), (3, 2))
        stdin = f"{known}\n\n{known}\n"  # a blank line is no request
        (summary,) = self.client.json_lines("call", "RouteGuide/RecordRoute", stdin=stdin)
        self.assertEqual((summary["pointCount"], summary["featureCount"]), (2, 2))

    def test_bidirectional_from_stdin_and_arguments(self) -> None:
        notes = [{"location": {"latitude": 30, "longitude": 30}, "message": m} for m in "abc"]
        stdin = "".join(json.dumps(note) + "\n" for note in notes)
        # Each note gets back the notes sent earlier at its location.
        replies = self.client.json_lines("call", "RouteGuide/RouteChat", stdin=stdin)
        self.assertEqual([reply["message"] for reply in replies], ["a", "a", "b"])
        other = [json.dumps({"location": {"latitude": 31}, "message": m}) for m in "xy"]
        replies = self.client.json_lines("call", "RouteGuide/RouteChat", *other)
        self.assertEqual([reply["message"] for reply in replies], ["x"])

    def test_global_flags_after_the_subcommand_and_negative_numbers(self) -> None:
        result = run(
            "CLIENT_BIN",
            "call",
            "RouteGuide/GetFeature",
            point(-338688000, 1512093000),
            f"--server={self.server.address}",
            "--insecure",
            "--timeout=20",
        )
        self.assertEqual(result.returncode, 0, result.stderr)
        response = json.loads(result.stdout)
        self.assertEqual(response["location"], {"latitude": -338688000, "longitude": 1512093000})

    def test_bad_input_is_one_line_and_exit_2(self) -> None:
        for case, args, stdin, expected in (
            (
                "unknown method",
                ("call", f"{ROUTE_GUIDE}/Foo", "{}"),
                None,
                "client: no method Foo in routeguide.v1.RouteGuide; it has: GetFeature,"
                " ListFeatures, RecordRoute, RouteChat",
            ),
            (
                "unknown service",
                ("call", "nope.v1.Nope/Foo", "{}"),
                None,
                "client: no service nope.v1.Nope; the server has: grpc.health.v1.Health,"
                f" grpc.reflection.v1alpha.ServerReflection, {ROUTE_GUIDE}",
            ),
            (
                "unknown symbol",
                ("describe", "routeguide.v1.Nothing"),
                None,
                "client: no service, method, message or enum routeguide.v1.Nothing",
            ),
            (
                "a service, no method",
                ("call", ROUTE_GUIDE, "{}"),
                None,
                f"client: {ROUTE_GUIDE} is a service; a method is SERVICE/METHOD, and it has:"
                " GetFeature, ListFeatures, RecordRoute, RouteChat",
            ),
            ("no method at all", ("call", "Send", "{}"), None, "a method is SERVICE/METHOD"),
            (
                "unknown field",
                ("call", "RouteGuide/GetFeature", '{"lat": 1}'),
                None,
                'client: the request: Message type "routeguide.v1.Point" has no field named'
                ' "lat" at "Point". Available Fields(except extensions):',
            ),
            (
                "bad JSON",
                ("call", "RouteGuide/GetFeature", '{"latitude": '),
                None,
                "client: the request: Failed to load JSON:",
            ),
            (
                "wrong type",
                ("call", "RouteGuide/RecordRoute", "{}", '{"latitude": "north"}'),
                None,
                "client: request 2: Failed to parse latitude field",
            ),
            (
                "two requests to a unary method",
                ("call", "RouteGuide/GetFeature", "{}", "{}"),
                None,
                "client: routeguide.v1.RouteGuide.GetFeature is unary: it takes one request",
            ),
            (
                "no request on stdin",
                ("call", "RouteGuide/ListFeatures"),
                "\n",
                "server-streaming: it takes one request, as an argument ('{}' for an empty one)"
                " or as one JSON line on stdin; stdin had 0 lines",
            ),
            (
                "a bad line on stdin, unary",
                ("call", "RouteGuide/GetFeature"),
                "[1]\n",
                "client: stdin line 1: ",
            ),
        ):
            with self.subTest(case):
                self.assertIn(expected, self.client.fails(2, *args, stdin=stdin))

    def test_a_bad_line_in_a_request_stream_cancels_the_call(self) -> None:
        for method in ("RecordRoute", "RouteChat"):
            with self.subTest(method):
                stdin = '{"location": {"latitude": 50}}\n{"latitude": }\n{}\n'
                if method == "RecordRoute":
                    stdin = '{"latitude": 50}\n{"latitude": }\n{}\n'
                result = self.client.run("call", f"RouteGuide/{method}", stdin=stdin)
                self.assertEqual(result.returncode, 2, result.stderr)
                self.assertEqual(result.stdout, "")
                self.assertRegex(
                    result.stderr, r"^client: stdin line 2: Failed to load JSON: [^\n]*\n$"
                )
                # The server saw the stream cancelled, never ended as if it were whole.
                logged = self.server.wait_for_log(
                    lambda entry, m=method: (
                        entry.get("method") == f"/{ROUTE_GUIDE}/{m}" and entry.get("code") != "OK"
                    )
                )
                self.assertEqual(logged["code"], "CANCELLED")
        self.assertNotIn(
            "OK",
            [e.get("code") for e in self.server.logs() if "RecordRoute" in e.get("method", "")],
        )
        # And it still answers.
        (summary,) = self.client.json_lines("call", "RouteGuide/RecordRoute", "{}")
        self.assertEqual(summary["pointCount"], 1)


class PingTest(absltest.TestCase):
    """Unary calls on the ping service, metadata the server reads, and headers refused."""

    def test_unary_and_a_trace_header_the_server_logs(self) -> None:
        with Server(env=CLOUD_RUN_ENV, binary_var=PING_SERVER) as server:
            client = Client(self, server)
            (response,) = client.json_lines(
                "-H",
                f"X-Cloud-Trace-Context: {TRACE_ID}/1;o=1",  # any case: sent lowercase
                "call",
                "ping.v1.PingService/Send",
                '{"message": "hello"}',
                "-H",
                "x-other-bin: AAEC/w",  # base64 without padding
            )
            self.assertEqual(response["pong"]["message"], "hello")
            entry = server.wait_for_log(lambda e: e.get("method") == "/ping.v1.PingService/Send")
            self.assertEqual(
                entry["logging.googleapis.com/trace"], f"projects/kit-test/traces/{TRACE_ID}"
            )

    def test_authorization_header_reaches_the_auth_policy_and_never_shows(self) -> None:
        google = FakeGoogle()
        self.addCleanup(google.close)
        allowed = "caller@example.iam.gserviceaccount.com"
        header, payload, _ = google.id_token("https://ping.example").split(".")
        token = f"{header}.{payload}.SIGNATURE_REMOVED"
        stranger = google.id_token("https://ping.example", email="x@example.com")
        send = ("call", "PingService/Send", '{"message": "let in"}')
        with Server(
            "--auth_mode=cloud-run", f"--allowed_invokers={allowed}", binary_var=PING_SERVER
        ) as server:
            client = Client(self, server)
            # Reflection stays open; the method does not.
            line = client.fails(1, *send)
            self.assertTrue(line.startswith("client: UNAUTHENTICATED:"), line)
            (response,) = client.json_lines(*send, "-H", f"authorization: Bearer {token}")
            self.assertEqual(response["pong"]["message"], "let in")
            self.assertEqual(server.wait_for_log(lambda e: "caller" in e)["caller"], allowed)
            line = client.fails(1, *send, "-H", f"Authorization: Bearer {stranger}")
            self.assertTrue(line.startswith("client: PERMISSION_DENIED:"), line)
            self.assertNotIn(stranger, line)
            self.assertNotIn(stranger, "\n".join(server.lines + server.stderr_lines))

    def test_bad_headers_are_refused_without_their_values(self) -> None:
        with Server(binary_var=PING_SERVER) as server:
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
            # The same check guards the other subcommands.
            self.assertIn("has no colon", client.fails(2, "ping", "-H", SECRET))
            (pong,) = client.json_lines("--json", "ping", "-H", "x-fine: yes")
            self.assertEqual(pong["pong"]["message"], "ping")


class NoReflectionTest(absltest.TestCase):
    def test_a_server_without_reflection_is_one_line_and_exit_1(self) -> None:
        with Server("--noreflection", binary_var=PING_SERVER) as server:
            client = Client(self, server)
            for args in (("list",), ("describe",), ("call", "ping.v1.PingService/Send", "{}")):
                with self.subTest(args[0]):
                    self.assertEqual(
                        client.fails(1, *args),
                        "client: UNIMPLEMENTED: the server does not serve reflection"
                        " (grpc.reflection.v1alpha.ServerReflection), which call, list and describe"
                        " need (a kit server started with --noreflection?)",
                    )
            # The subcommands with generated code still work.
            (pong,) = client.json_lines("--json", "ping", "--message=still here")
            self.assertEqual(pong["pong"]["message"], "still here")


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
