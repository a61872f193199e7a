"""Route guide's client binary (python/services/route_guide/client.py): its own subcommands,
streams included, against the real route guide server, beside the kit's subcommands it also
has. Its points are client_points_test's; the kit's client's own behaviour is tested in
tests/e2e."""

from __future__ import annotations

import json

from absl.testing import absltest

from python.services.route_guide.feature_db import FeatureDb
from tests.e2e import client_help
from tests.e2e.processes import ROUTE_GUIDE_SERVER, Server, run

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
OWN_SUBCOMMANDS = ("get-feature", "list-features", "record-route", "chat")


class RouteGuideClientTest(absltest.TestCase):
    @classmethod
    def setUpClass(cls) -> None:
        cls.server = Server(binary_var=ROUTE_GUIDE_SERVER)

    @classmethod
    def tearDownClass(cls) -> None:
        cls.server.stop()

    def client(self, *args: str, stdin: str | None = None) -> list[dict]:
        """The client's JSON output, once it has succeeded."""
        result = run(
            "CLIENT_BIN",
            f"--server={self.server.address}",
            "--insecure",
            "--json",
            *args,
            input=stdin,
        )
        self.assertEqual(result.returncode, 0, result.stderr)
        return [json.loads(line) for line in result.stdout.splitlines()]

    def test_get_feature(self) -> None:
        feature = next(FEATURES.within_all())
        where = f"{feature.location.latitude},{feature.location.longitude}"
        (response,) = self.client("get-feature", where)
        self.assertEqual(response["name"], feature.name)

    def test_list_features_prints_each_message(self) -> None:
        listed = self.client("list-features", "370000000,-1230000000", "380000000,-1215000000")
        self.assertLen(listed, len(FEATURES))
        self.assertTrue(all(entry["name"] for entry in listed))

    def test_record_route(self) -> None:
        (summary,) = self.client("record-route", "--random_points=7")
        self.assertEqual(summary["pointCount"], 7)
        self.assertEqual(summary["featureCount"], 7)

    def test_chat_from_arguments_and_stdin(self) -> None:
        notes = ["1.0,1.0:first", "1.0,1.0:second"]
        self.assertEqual([n["message"] for n in self.client("chat", *notes)], ["first"])
        from_stdin = self.client("chat", stdin="2.0,2.0:a\n2.0,2.0:b\n2.0,2.0:c\n")
        self.assertEqual([n["message"] for n in from_stdin], ["a", "a", "b"])

    def test_the_kits_subcommands(self) -> None:
        self.assertEqual(self.client("health"), [{"status": "SERVING"}])
        self.assertEqual(
            self.client("health", f"--service={ROUTE_GUIDE}", "--watch", "--watch_seconds=1"),
            [{"status": "SERVING"}],
        )
        result = run("CLIENT_BIN", f"--server={self.server.address}", "--insecure", "describe")
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertIn(ROUTE_GUIDE_RPCS, result.stdout)
        feature = next(FEATURES.within_all())
        where = {"latitude": feature.location.latitude, "longitude": feature.location.longitude}
        (response,) = self.client("call", "RouteGuide/GetFeature", json.dumps(where))
        self.assertEqual(response["name"], feature.name)

    def test_help(self) -> None:
        client_help.assert_help(self, "CLIENT_BIN", OWN_SUBCOMMANDS)


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
