"""Ping's client binary (python/services/ping/client.py): its own subcommands, ping and relay,
against the real ping server, beside the kit's subcommands it also has. The kit's client's own
behaviour (TLS, tokens, retries, bad input, call) is tested in tests/e2e."""

from __future__ import annotations

import json
import subprocess

from absl.testing import absltest

from tests.e2e import client_help
from tests.e2e.processes import PING_SERVER, Server, run


class PingClientTest(absltest.TestCase):
    @classmethod
    def setUpClass(cls) -> None:
        cls.upstream = Server(binary_var=PING_SERVER)
        cls.ping = Server(
            f"--upstream={cls.upstream.address}", "--upstream_insecure", binary_var=PING_SERVER
        )
        cls.address = f"--server={cls.ping.address}"

    @classmethod
    def tearDownClass(cls) -> None:
        for server in (cls.ping, cls.upstream):
            server.stop()

    def client(self, *args: str) -> subprocess.CompletedProcess[str]:
        return run("CLIENT_BIN", self.address, "--insecure", *args)

    def json_lines(self, *args: str) -> list[dict]:
        result = self.client("--json", *args)
        self.assertEqual(result.returncode, 0, result.stderr)
        return [json.loads(line) for line in result.stdout.splitlines()]

    def test_ping(self) -> None:
        (response,) = self.json_lines("ping", "--message=hello")
        self.assertEqual(response["pong"]["message"], "hello")
        self.assertIn("receivedOn", response["pong"])

    def test_relay(self) -> None:
        (response,) = self.json_lines("relay", "--message=hello")
        self.assertEqual(response["pong"]["message"], "hello (relayed)")

    def test_the_kits_subcommands(self) -> None:
        self.assertEqual(self.json_lines("health"), [{"status": "SERVING"}])
        (response,) = self.json_lines("call", "ping.v1.PingService/Send", '{"message": "hi"}')
        self.assertEqual(response["pong"]["message"], "hi")

    def test_global_flags_on_either_side_of_ping(self) -> None:
        for order, args in (
            ("after", ("ping", self.address, "--insecure", "--json", "--message=hi")),
            ("mixed", (self.address, "ping", "--message=hi", "--insecure", "--json")),
            ("--json before only", ("--json", "ping", self.address, "--insecure", "--message=hi")),
        ):
            with self.subTest(order):
                result = run("CLIENT_BIN", *args)
                self.assertEqual(result.returncode, 0, result.stderr)
                (response,) = [json.loads(line) for line in result.stdout.splitlines()]
                self.assertEqual(response["pong"]["message"], "hi")

    def test_headers_on_ping(self) -> None:
        refused = self.client("ping", "-H", "no colon here")
        self.assertEqual((refused.returncode, refused.stdout), (2, ""))
        self.assertLen(refused.stderr.splitlines(), 1, refused.stderr)
        self.assertIn("client: argument -H/--header: ", refused.stderr)
        self.assertIn("has no colon", refused.stderr)
        (response,) = self.json_lines("ping", "-H", "x-fine: yes")
        self.assertEqual(response["pong"]["message"], "ping")

    def test_help(self) -> None:
        client_help.assert_help(self, "CLIENT_BIN", ("ping", "relay"))


if __name__ == "__main__":
    absltest.main()
