"""Route guide's Java client (//python/services/route_guide/java:client) against its real
Python server: every RPC kind of RouteGuide, with the same messages as its Python client prints
for the same calls (each client's text format parsed back: their words differ), which shows
both languages' stubs, built from the same proto_library targets, agree with the service; and
its bad input. The kit's flags (TLS, tokens, health) are tested on the kit's own client
(tests/java) and on ping's (python/services/ping/java)."""

from __future__ import annotations

import subprocess

from absl.testing import absltest
from google.protobuf.message import Message
from routeguide.v1 import route_guide_pb2

from tests.e2e.processes import ROUTE_GUIDE_SERVER, Server, run
from tests.java.text_lines import Line, parse_lines, without

JAVA_CLIENT = "JAVA_CLIENT_BIN"
PYTHON_CLIENT = "CLIENT_BIN"  # route guide's


class RouteGuideJavaClientTest(absltest.TestCase):
    @classmethod
    def setUpClass(cls) -> None:
        cls.route_guide = Server(binary_var=ROUTE_GUIDE_SERVER)

    @classmethod
    def tearDownClass(cls) -> None:
        cls.route_guide.stop()

    def java(self, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        return run(JAVA_CLIENT, *args, input=stdin)

    def both(
        self,
        *args: str,
        response: type[Message],
        stdin: str | None = None,
        differing: tuple[str, ...] = (),
    ) -> list[Line]:
        """Runs the Java and the Python client alike (flags after the subcommand for Java,
        before it for Python); both succeed, and their lines parse to the same `response`
        messages with the same degrees comments (once the `differing` fields are cleared).
        Returns the Java client's lines."""
        flags = [f"--server={self.route_guide.address}", "--insecure"]
        java = self.java(*args, *flags, stdin=stdin)
        self.assertEqual(java.returncode, 0, java.stderr)
        self.assertEqual(java.stderr, "")
        python = run(PYTHON_CLIENT, *flags, *args, input=stdin)
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
        lines = self.both("get-feature", "370000000,-1229500000", response=route_guide_pb2.Feature)
        self.assertEqual([line.message.name for line in lines], ["South Mill Camp"])
        self.assertEqual(lines[0].degrees, "location 37.0,-122.95")

    def test_server_streaming(self) -> None:
        lines = self.both(
            "list-features",
            "370000000,-1230000000",
            "380000000,-1215000000",
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
            response=route_guide_pb2.RouteSummary,
            differing=("elapsed_time",),
        )
        self.assertLen(lines, 1)
        self.assertEqual((lines[0].message.point_count, lines[0].message.feature_count), (2, 2))

    def test_bidirectional_streaming(self) -> None:
        notes = "1.0,1.0:first\n1.0,1.0:second\n2.0,2.0:third\n"
        lines = self.both("chat", response=route_guide_pb2.RouteNote, stdin=notes)
        self.assertEqual([line.message.message for line in lines], ["first"])

    def test_record_route_of_known_places(self) -> None:
        # Without points the Java client walks features it lists first (it has no map file).
        flags = [f"--server={self.route_guide.address}", "--insecure"]
        lines = self.java_lines("record-route", *flags, response=route_guide_pb2.RouteSummary)
        self.assertLen(lines, 1)
        self.assertGreater(lines[0].message.point_count, 0)
        self.assertGreater(lines[0].message.feature_count, 0)

    def test_bad_input_is_one_line_and_exit_2(self) -> None:
        for args, stdin in [
            (("get-feature", "north,west"), None),
            (("chat", f"--server={self.route_guide.address}", "--insecure"), "1.0,1.0:ok\nbad\n"),
        ]:
            result = self.java(*args, stdin=stdin)
            self.assertEqual(result.returncode, 2, (args, result.stderr))
            if stdin is None:
                self.assertEqual(result.stdout, "")
            self.assertLen(result.stderr.splitlines(), 1, result.stderr)
            self.assertTrue(result.stderr.startswith("client: "), result.stderr)
            self.assertNotIn("Exception", result.stderr)
        self.assertIsNone(self.route_guide.process.poll())


if __name__ == "__main__":
    absltest.main()
