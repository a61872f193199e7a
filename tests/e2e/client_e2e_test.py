"""Every subcommand of the client binary against the real server, streams included."""

from __future__ import annotations

import json
import os
import re
import subprocess

from absl.testing import absltest
from google.protobuf import text_format
from routeguide.v1 import route_guide_pb2 as pb

from python.services.route_guide.feature_db import FeatureDb
from tests.e2e import point_cases
from tests.e2e.processes import PING_SERVER, ROUTE_GUIDE_SERVER, Server, binary, run

FEATURES = FeatureDb.load()
SUBCOMMANDS = (
    "ping",
    "relay",
    "get-feature",
    "list-features",
    "record-route",
    "chat",
    "health",
    "call",
    "list",
    "describe",
)
GLOBAL_FLAGS = (
    "--server",
    "--insecure",
    "--ca_cert",
    "--authority",
    "--auth",
    "--noauth",
    "--audience",
    "--token_file",
    "--timeout",
    "--wait_for_ready",
    "--json",
    "--header",
)


class ClientSubcommandsTest(absltest.TestCase):
    @classmethod
    def setUpClass(cls) -> None:
        cls.upstream = Server(binary_var=PING_SERVER)
        cls.ping = Server(
            f"--upstream={cls.upstream.address}", "--upstream_insecure", binary_var=PING_SERVER
        )
        cls.route_guide = Server(binary_var=ROUTE_GUIDE_SERVER)

    @classmethod
    def tearDownClass(cls) -> None:
        for server in (cls.route_guide, cls.ping, cls.upstream):
            server.stop()

    def client(
        self, *args: str, server: Server | None = None, stdin: str | None = None
    ) -> list[dict]:
        """The client's JSON output from the route guide service, or from `server`."""
        result = run(
            "CLIENT_BIN",
            f"--server={(server or self.route_guide).address}",
            "--insecure",
            "--json",
            *args,
            input=stdin,
        )
        self.assertEqual(result.returncode, 0, result.stderr)
        return [json.loads(line) for line in result.stdout.splitlines()]

    def test_ping(self) -> None:
        (response,) = self.client("ping", "--message=hello", server=self.ping)
        self.assertEqual(response["pong"]["message"], "hello")
        self.assertIn("receivedOn", response["pong"])

    def test_relay(self) -> None:
        (response,) = self.client("relay", "--message=hello", server=self.ping)
        self.assertEqual(response["pong"]["message"], "hello (relayed)")

    def test_get_feature(self) -> None:
        feature = next(FEATURES.within_all())
        where = f"{feature.location.latitude},{feature.location.longitude}"
        (response,) = self.client("get-feature", where)
        self.assertEqual(response["name"], feature.name)

    def test_list_features_prints_each_message(self) -> None:
        listed = self.client("list-features", "370000000,-1230000000", "380000000,-1215000000")
        self.assertLen(listed, len(FEATURES))
        self.assertTrue(all(entry["name"] for entry in listed))

    def test_reader_that_goes_away(self) -> None:
        """`client list-features ... | head -0`: the pipe is closed before the first line. The
        client stops as a tool killed by SIGPIPE would (exit 141), with no traceback, and the
        server goes on answering."""
        reader, writer = os.pipe()
        os.close(reader)
        try:
            done = subprocess.run(
                [
                    binary("CLIENT_BIN"),
                    f"--server={self.route_guide.address}",
                    "--insecure",
                    "list-features",
                    "-90.0,-180.0",
                    "90.0,180.0",
                ],
                stdin=subprocess.DEVNULL,
                stdout=writer,
                stderr=subprocess.PIPE,
                text=True,
                timeout=60,
                check=False,
            )
        finally:
            os.close(writer)
        self.assertEqual(done.returncode, 141, done.stderr)
        self.assertEqual(done.stderr, "")
        self.test_get_feature()

    def test_record_route(self) -> None:
        (summary,) = self.client("record-route", "--random_points=7")
        self.assertEqual(summary["pointCount"], 7)
        self.assertEqual(summary["featureCount"], 7)

    def test_chat_from_arguments_and_stdin(self) -> None:
        notes = ["1.0,1.0:first", "1.0,1.0:second"]
        self.assertEqual([n["message"] for n in self.client("chat", *notes)], ["first"])
        from_stdin = self.client("chat", stdin="2.0,2.0:a\n2.0,2.0:b\n2.0,2.0:c\n")
        self.assertEqual([n["message"] for n in from_stdin], ["a", "a", "b"])

    def test_health_check_and_watch(self) -> None:
        self.assertEqual(self.client("health"), [{"status": "SERVING"}])
        self.assertEqual(self.client("health", server=self.ping), [{"status": "SERVING"}])
        self.assertEqual(
            self.client(
                "health", "--service=routeguide.v1.RouteGuide", "--watch", "--watch_seconds=1"
            ),
            [{"status": "SERVING"}],
        )

    def test_text_output(self) -> None:
        result = run("CLIENT_BIN", f"--server={self.ping.address}", "--insecure", "health")
        self.assertEqual(result.stdout.strip(), "status: SERVING")


class PointsTest(absltest.TestCase):
    """Points in degrees or E7, any sign, with the global flags before or after the subcommand
    (or both); RouteGuide's GetFeature echoes the point it received, which shows what was sent.
    Bad points are in bad_input_test."""

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


class GlobalFlagsEitherSideTest(absltest.TestCase):
    """The global flags work before the subcommand, after it, or split; after wins."""

    @classmethod
    def setUpClass(cls) -> None:
        cls.server = Server(binary_var=PING_SERVER)
        cls.address = f"--server={cls.server.address}"

    @classmethod
    def tearDownClass(cls) -> None:
        cls.server.stop()

    def assert_pong(self, *args: str) -> None:
        result = run("CLIENT_BIN", *args)
        self.assertEqual(result.returncode, 0, result.stderr)
        (response,) = [json.loads(line) for line in result.stdout.splitlines()]
        self.assertEqual(response["pong"]["message"], "hi")

    def test_before_after_and_mixed(self) -> None:
        for order, args in (
            ("before", (self.address, "--insecure", "--json", "ping", "--message=hi")),
            ("after", ("ping", self.address, "--insecure", "--json", "--message=hi")),
            ("mixed", (self.address, "ping", "--message=hi", "--insecure", "--json")),
            ("mixed the other way", ("--insecure", "--json", "ping", self.address, "--message=hi")),
        ):
            with self.subTest(order):
                self.assert_pong(*args)

    def test_after_the_subcommand_wins(self) -> None:
        self.assert_pong(
            "--server=127.0.0.1:1", "--json", "ping", self.address, "--insecure", "--message=hi"
        )
        self.assert_pong(
            "--timeout=0.000001",
            self.address,
            "ping",
            "--insecure",
            "--json",
            "--timeout=30",
            "--message=hi",
        )

    def test_a_flag_before_is_not_reset_by_the_default_after(self) -> None:
        # --json only before the subcommand: were the subcommand's default (off) to reset it,
        # the output would be text, which assert_pong cannot parse. (A 1 us --timeout raced:
        # gRPC now and then answered before the deadline was checked.)
        self.assert_pong("--json", "ping", self.address, "--insecure", "--message=hi")


class GlobalFlagsHelpTest(absltest.TestCase):
    def test_each_subcommand_help_lists_the_global_flags(self) -> None:
        for subcommand in SUBCOMMANDS:
            with self.subTest(subcommand):
                result = run("CLIENT_BIN", subcommand, "--help")
                self.assertEqual(result.returncode, 0, result.stderr)
                self.assertIn("global flags (before or after SUBCOMMAND)", result.stdout)
                for flag in GLOBAL_FLAGS:
                    self.assertRegex(result.stdout, rf"{re.escape(flag)}\b")


class ClientBadInputTest(absltest.TestCase):
    def assert_usage_error(self, expected: str, *args: str, env: dict | None = None) -> None:
        result = run("CLIENT_BIN", *args, env=env)
        self.assertEqual(result.returncode, 2, result.stderr)
        lines = result.stderr.strip().splitlines()
        self.assertLen(lines, 1, result.stderr)
        self.assertIn(expected, lines[0])

    def test_unknown_subcommand(self) -> None:
        self.assert_usage_error("invalid choice: 'pong'", "--insecure", "pong")

    def test_missing_subcommand(self) -> None:
        self.assert_usage_error("required: SUBCOMMAND", "--insecure")

    def test_missing_token_file(self) -> None:
        self.assert_usage_error(
            "cannot read --token_file /nonexistent", "--token_file=/nonexistent", "ping"
        )

    def test_no_credentials_for_an_id_token(self) -> None:
        env = {
            "GOOGLE_APPLICATION_CREDENTIALS": "/nonexistent.json",
            "GCE_METADATA_HOST": "127.0.0.1:1",
        }
        self.assert_usage_error(
            "cannot mint an ID token for audience https://example.com",
            "--server=example.com",
            "ping",
            env=env,
        )

    def test_bad_global_flag_after_the_subcommand(self) -> None:
        self.assert_usage_error(
            "argument --timeout: invalid float value: 'soon'",
            "ping",
            "--insecure",
            "--timeout=soon",
        )
        self.assert_usage_error("unrecognized arguments: --bogus", "ping", "--insecure", "--bogus")
        self.assert_usage_error("not allowed with argument", "ping", "--auth", "--noauth")

    def test_bad_point(self) -> None:
        self.assert_usage_error("a point is LAT,LON", "--insecure", "get-feature", "north")


class ChatBadNotesTest(absltest.TestCase):
    """A bad note, from the arguments or from stdin, is bad input: the call never starts."""

    def test_bad_notes_are_refused_before_the_call(self) -> None:
        with Server(binary_var=ROUTE_GUIDE_SERVER) as server:
            for source, args, stdin, bad in (
                ("arguments", ("1.0,1.0:fine", "north:bad"), None, "north:bad"),
                ("stdin", (), "1.0,1.0:fine\nnorth:bad\n2.0,2.0:after it\n", "north:bad"),
                ("no colon", ("1.0,1.0",), None, "1.0,1.0"),
            ):
                with self.subTest(source):
                    result = run(
                        "CLIENT_BIN",
                        f"--server={server.address}",
                        "--insecure",
                        "chat",
                        *args,
                        input=stdin,
                    )
                    self.assertEqual(result.returncode, 2, result.stderr)
                    lines = result.stderr.strip().splitlines()
                    self.assertLen(lines, 1, result.stderr)
                    self.assertIn(f"a note is LAT,LON:message, got {bad!r}", lines[0])
            # The server still answers, and it logged no RouteChat: none was started.
            result = run(
                "CLIENT_BIN", f"--server={server.address}", "--insecure", "get-feature", "1.0,1.0"
            )
            self.assertEqual(result.returncode, 0, result.stderr)
            server.wait_for_log(lambda e: e.get("method") == "/routeguide.v1.RouteGuide/GetFeature")
            methods = [e.get("method") for e in server.logs()]
            self.assertNotIn("/routeguide.v1.RouteGuide/RouteChat", methods)


if __name__ == "__main__":
    absltest.main()
