"""The Java client's points against the real RouteGuide server, beside the Python client's:
degrees or E7, every sign and corner, negative points with flags on either side of the
subcommand, and bad points refused with the Python client's reason (docs/client.md). Output
is compared as messages and degrees comments, each line parsed back (tests/java/text_lines.py).

A target of its own: each Java client run costs a JVM start (about a second of CPU), and these
runs would push :client_e2e_test past its timeout on a loaded machine."""

from __future__ import annotations

import subprocess
from collections import defaultdict
from decimal import Decimal

from absl.testing import absltest
from google.protobuf.message import Message
from routeguide.v1 import route_guide_pb2

from python.services.route_guide import point_cases
from tests.e2e.processes import ROUTE_GUIDE_SERVER, Server, run
from tests.java.text_lines import Line, parse_lines

JAVA_CLIENT = "JAVA_CLIENT_BIN"
PYTHON_CLIENT = "CLIENT_BIN"  # route guide's


def degrees(e7: int) -> str:
    """E7 as the clients print it in degrees: exact, at least one decimal, no trailing zeros."""
    text = f"{Decimal(e7).scaleb(-7):f}".rstrip("0")
    return text + "0" if text.endswith(".") else text


class JavaClientPointsTest(absltest.TestCase):
    @classmethod
    def setUpClass(cls) -> None:
        cls.route_guide = Server(binary_var=ROUTE_GUIDE_SERVER)

    @classmethod
    def tearDownClass(cls) -> None:
        cls.route_guide.stop()

    def java(self, *args: str) -> subprocess.CompletedProcess[str]:
        return run(JAVA_CLIENT, *args)

    def java_lines(self, *args: str, response: type[Message]) -> list[Line]:
        """The Java client's lines, once it has succeeded with nothing on stderr."""
        result = self.java(*args)
        self.assertEqual((result.returncode, result.stderr), (0, ""))
        return parse_lines(result.stdout, response)

    def both(self, *args: str, server: Server, response: type[Message]) -> list[Line]:
        """Runs the Java client (flags after the subcommand) and the Python client (flags
        before it); both succeed, and their lines parse to the same `response` messages with
        the same degrees comments. Returns the lines."""
        flags = [f"--server={server.address}", "--insecure"]
        java = self.java_lines(*args, *flags, response=response)
        python = run(PYTHON_CLIENT, *flags, *args)
        self.assertEqual((python.returncode, python.stderr), (0, ""))
        self.assertEqual(java, parse_lines(python.stdout, response))
        return java

    def test_points_as_people_type_them(self) -> None:
        # Every sign and corner, degrees and E7, in one chat (a JVM start costs a second of
        # CPU): two notes at each point, so RouteGuide sends each first note back with the
        # point it received. Both clients print the same notes, with the expected points.
        notes, expected, seen = [], [], defaultdict(list)
        for text, (latitude, longitude) in point_cases.GOOD.items():
            for note in (f"{text}:{len(notes)}", f"{text}:{len(notes) + 1}"):
                notes.append(note)
                earlier = seen[(latitude, longitude)]
                expected.extend(earlier)
                location = route_guide_pb2.Point(latitude=latitude, longitude=longitude)
                message = route_guide_pb2.RouteNote(
                    location=location, message=note.rpartition(":")[2]
                )
                earlier.append(Line(message, f"location {degrees(latitude)},{degrees(longitude)}"))
        response = route_guide_pb2.RouteNote
        self.assertEqual(
            self.both("chat", *notes, server=self.route_guide, response=response), expected
        )

    def test_negative_points_with_flags_on_either_side(self) -> None:
        address = f"--server={self.route_guide.address}"
        location = route_guide_pb2.Point(latitude=-338688000, longitude=-706693000)
        expected = [Line(route_guide_pb2.Feature(location=location), "location -33.8688,-70.6693")]
        for args in (
            (address, "--insecure", "get-feature", "-33.8688,-70.6693"),
            ("get-feature", "--insecure", "-33.8688,-70.6693", address),
            (address, "get-feature", "-338688000,-706693000", "--insecure"),
            # A flag given twice, before and after the point: the last one wins.
            ("get-feature", "--server=127.0.0.1:1", "-33.8688,-70.6693", "--insecure", address),
        ):
            with self.subTest(args=args):
                lines = self.java_lines(*args, response=route_guide_pb2.Feature)
                self.assertEqual(lines, expected)

    def test_the_whole_world_with_negative_corners(self) -> None:
        # The command, which the Python client had refused; then in degrees.
        response = route_guide_pb2.Feature
        lines = self.both(
            "list-features",
            "-900000000,-1800000000",
            "900000000,1800000000",
            server=self.route_guide,
            response=response,
        )
        in_degrees = self.java_lines(
            "list-features",
            "-90.0,-180.0",
            "90.0,180.0",
            f"--server={self.route_guide.address}",
            "--insecure",
            response=response,
        )
        self.assertEqual(in_degrees, lines)
        self.assertGreater(len(lines), 10)

    def test_bad_points(self) -> None:
        # The same reason as the Python client's, which //tests/e2e:bad_input_test holds to the
        # same table; the words round it are each parser's own (argparse's, picocli's), so only
        # the argument's name is checked there.
        nowhere = ("--server=127.0.0.1:1", "--insecure")
        for point, message in point_cases.BAD.items():
            with self.subTest(point=point):
                result = self.java("get-feature", point, *nowhere)
                self.assertEqual((result.returncode, result.stdout), (2, ""), result.stderr)
                self.assertLen(result.stderr.splitlines(), 1, result.stderr)
                self.assertTrue(result.stderr.startswith("client: "), result.stderr)
                self.assertIn("(POINT)", result.stderr)
                self.assertIn(message, result.stderr)


if __name__ == "__main__":
    absltest.main()
