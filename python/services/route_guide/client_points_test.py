"""Route guide's client's points (points.py) through its binary: degrees or E7, any sign, with
the global flags before or after the subcommand (or both); RouteGuide's GetFeature echoes the
point it received, which shows what was sent. Bad points are refused before any call, each with
its one line (point_cases.py, shared with the Java client's tests)."""

from __future__ import annotations

import json

from absl.testing import absltest
from google.protobuf import text_format
from routeguide.v1 import route_guide_pb2 as pb

from python.services.route_guide import point_cases
from python.services.route_guide.feature_db import FeatureDb
from tests.e2e.processes import ROUTE_GUIDE_SERVER, Server, run

FEATURES = FeatureDb.load()
EXIT_USAGE = 2
# A server that does not listen: a call would be exit 1, so a 2 is refused before any call.
NOWHERE = ("--server=127.0.0.1:1", "--insecure")


class PointsTest(absltest.TestCase):
    @classmethod
    def setUpClass(cls) -> None:
        cls.server = Server(binary_var=ROUTE_GUIDE_SERVER)
        cls.address = f"--server={cls.server.address}"

    @classmethod
    def tearDownClass(cls) -> None:
        cls.server.stop()

    def succeed(self, *args: str) -> list[str]:
        result = run("CLIENT_BIN", *args)
        self.assertEqual(result.returncode, 0, (args, result.stderr))
        self.assertEqual(result.stderr, "")
        return result.stdout.splitlines()

    def test_every_way_of_writing_a_point(self) -> None:
        placements = (
            lambda point: (self.address, "--insecure", "--json", "get-feature", point),
            lambda point: ("get-feature", "--json", point, self.address, "--insecure"),
            lambda point: (self.address, "get-feature", point, "--json", "--insecure"),
        )
        for index, (text, (latitude, longitude)) in enumerate(point_cases.GOOD.items()):
            args = placements[index % len(placements)](text)
            with self.subTest(args=args):
                (line,) = self.succeed(*args)
                expected = {"latitudeDegrees": latitude / 1e7, "longitudeDegrees": longitude / 1e7}
                expected |= {
                    k: v for k, v in (("latitude", latitude), ("longitude", longitude)) if v
                }
                self.assertEqual(json.loads(line), {"location": expected})

    def test_text_output_shows_degrees_in_a_comment(self) -> None:
        (line,) = self.succeed(self.address, "--insecure", "get-feature", "-33.8688,151.2093")
        self.assertEqual(
            line,
            "location { latitude: -338688000 longitude: 1512093000 } # location -33.8688,151.2093",
        )
        self.assertEqual(text_format.Parse(line, pb.Feature()).location.latitude, -338688000)

    def test_the_whole_world_with_negative_corners(self) -> None:
        # The command, and the same rectangle in degrees with flags after the points.
        e7 = self.succeed(
            self.address,
            "--insecure",
            "list-features",
            "-900000000,-1800000000",
            "900000000,1800000000",
        )
        degrees = self.succeed(
            "list-features",
            "-90.0,-180.0",
            "90.0,180.0",
            self.address,
            "--insecure",
            "--timeout",
            "30",
        )
        self.assertLen(e7, len(FEATURES))
        self.assertEqual(degrees, e7)

    def test_degrees_shown_read_back_as_the_same_points(self) -> None:
        # Every feature's location as printed in degrees, sent back as a route: each one is
        # found again, so the printed degrees are exact.
        listed = self.succeed(
            self.address, "--insecure", "list-features", "-90.0,-180.0", "90,180.0"
        )
        shown = [line.rpartition(" # location ")[2] for line in listed]
        (summary,) = self.succeed("record-route", *shown, "--json", self.address, "--insecure")
        self.assertEqual(json.loads(summary)["featureCount"], len(FEATURES), shown)

    def test_chat_notes_south_and_west(self) -> None:
        # The same spot in degrees and in E7: the second note finds the first (a chat's notes
        # last one call).
        notes = ("-33.4489,-70.6693:first", "-334489000,-706693000:second")
        (earlier,) = self.succeed("chat", *notes, "--json", self.address, "--insecure")
        self.assertEqual(json.loads(earlier)["message"], "first")


class BadPointsTest(absltest.TestCase):
    def assert_one_line_error(self, stderr: str, expected: str) -> None:
        lines = stderr.strip().splitlines()
        self.assertLen(lines, 1, f"expected one line, got: {stderr!r}")
        self.assertIn(expected, lines[0])
        self.assertNotIn("Traceback", stderr)

    def test_bad_points(self) -> None:
        # Flags before the subcommand for half of them, after the point for the others.
        for index, (point, message) in enumerate(point_cases.BAD.items()):
            args = (
                (*NOWHERE, "get-feature", point) if index % 2 else ("get-feature", point, *NOWHERE)
            )
            with self.subTest(args=args):
                result = run("CLIENT_BIN", *args)
                self.assertEqual(result.returncode, EXIT_USAGE, result.stderr)
                self.assertEqual(result.stderr, f"client: argument point: {message} (see --help)\n")
                self.assertEqual(result.stdout, "")

    def test_bad_points_in_other_subcommands(self) -> None:
        for args, expected in (
            (("list-features", "-90.0,-180.0", "90.0000001,0"), "argument hi: '90.0000001,0'"),
            (("record-route", "-1.0,-1.0", "-1,-1"), "argument points: '-1,-1' could be"),
            (("chat", "-1.0,-1.0:ok", "-91.0,0:no"), "argument notes: '-91.0,0': latitude"),
            (("chat", "-1.0,-1.0:ok", "-1.0,-1.0"), "a note is LAT,LON:message, got '-1.0,-1.0'"),
            (("get-feature", "north"), "a point is LAT,LON"),
        ):
            with self.subTest(args=args):
                result = run("CLIENT_BIN", *args, *NOWHERE)
                self.assertEqual(result.returncode, EXIT_USAGE, result.stderr)
                self.assert_one_line_error(result.stderr, expected)


if __name__ == "__main__":
    absltest.main()
