"""The kit's client binary (//python/client) against the kit's test service: `health`, the global
flags on either side of the subcommand, help, bad input, and a reader that goes away. Its `call`,
`list` and `describe` are call_e2e_test's; each sample's own subcommands are tested beside the
sample (python/services/*/client_e2e_test.py)."""

from __future__ import annotations

import json
import os
import subprocess

from absl.testing import absltest

from tests.e2e import client_help
from tests.e2e.processes import KITTEST_SERVER, Server, binary, run

SERVICE = "kittest.v1.TestService"
UNARY = f"{SERVICE}/Unary"
HI = json.dumps({"message": "hi"})


class HealthTest(absltest.TestCase):
    @classmethod
    def setUpClass(cls) -> None:
        cls.server = Server(binary_var=KITTEST_SERVER)

    @classmethod
    def tearDownClass(cls) -> None:
        cls.server.stop()

    def client(self, *args: str) -> subprocess.CompletedProcess[str]:
        return run("CLIENT_BIN", f"--server={self.server.address}", "--insecure", *args)

    def json_lines(self, *args: str) -> list[dict]:
        result = self.client("--json", *args)
        self.assertEqual(result.returncode, 0, result.stderr)
        return [json.loads(line) for line in result.stdout.splitlines()]

    def test_health_check_and_watch(self) -> None:
        self.assertEqual(self.json_lines("health"), [{"status": "SERVING"}])
        self.assertEqual(
            self.json_lines("health", f"--service={SERVICE}", "--watch", "--watch_seconds=1"),
            [{"status": "SERVING"}],
        )

    def test_an_unknown_service_is_exit_1(self) -> None:
        result = self.client("health", "--service=nope")
        self.assertEqual((result.returncode, result.stdout), (1, ""))
        self.assertEqual(result.stderr, "client: NOT_FOUND: unknown service 'nope'\n")

    def test_text_output(self) -> None:
        result = self.client("health")
        self.assertEqual(result.stdout, "status: SERVING\n")

    def test_reader_that_goes_away(self) -> None:
        """`client ... | head -0`: the pipe is closed before the first line. The client stops as
        a tool killed by SIGPIPE would (exit 141), with no traceback, and the server goes on
        answering. A stream on generated code (health's watch) and through reflection."""
        for args in (
            ("health", "--watch"),
            ("call", f"{SERVICE}/ServerStream", '{"count": 1000}'),
        ):
            with self.subTest(args[0]):
                reader, writer = os.pipe()
                os.close(reader)
                try:
                    done = subprocess.run(
                        [
                            binary("CLIENT_BIN"),
                            f"--server={self.server.address}",
                            "--insecure",
                            *args,
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
                self.test_text_output()


class GlobalFlagsEitherSideTest(absltest.TestCase):
    """The global flags work before the subcommand, after it, or split; after wins."""

    @classmethod
    def setUpClass(cls) -> None:
        cls.server = Server(binary_var=KITTEST_SERVER)
        cls.address = f"--server={cls.server.address}"

    @classmethod
    def tearDownClass(cls) -> None:
        cls.server.stop()

    def assert_hi(self, *args: str) -> None:
        result = run("CLIENT_BIN", *args)
        self.assertEqual(result.returncode, 0, result.stderr)
        (response,) = [json.loads(line) for line in result.stdout.splitlines()]
        self.assertEqual(response["message"], "hi")

    def test_before_after_and_mixed(self) -> None:
        for order, args in (
            ("before", (self.address, "--insecure", "--json", "call", UNARY, HI)),
            ("after", ("call", self.address, "--insecure", "--json", UNARY, HI)),
            ("mixed", (self.address, "call", UNARY, "--insecure", HI, "--json")),
            ("mixed the other way", ("--insecure", "--json", "call", UNARY, HI, self.address)),
        ):
            with self.subTest(order):
                self.assert_hi(*args)

    def test_after_the_subcommand_wins(self) -> None:
        self.assert_hi("--server=127.0.0.1:1", "call", UNARY, HI, self.address, "--insecure")
        self.assert_hi(
            "--timeout=0.000001", self.address, "call", "--insecure", "--timeout=30", UNARY, HI
        )

    def test_a_flag_before_is_not_reset_by_the_default_after(self) -> None:
        # --json only before the subcommand: were the subcommand's default (off) to reset it,
        # the output would be text (`status: SERVING`), which json.loads cannot parse. (A 1 us
        # --timeout raced: gRPC now and then answered before the deadline was checked.)
        result = run(
            "CLIENT_BIN", "--json", "health", f"--service={SERVICE}", self.address, "--insecure"
        )
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertEqual(json.loads(result.stdout), {"status": "SERVING"})


class GlobalFlagsHelpTest(absltest.TestCase):
    def test_the_kit_subcommands_each_list_the_global_flags(self) -> None:
        client_help.assert_help(self, "CLIENT_BIN")


class ClientBadInputTest(absltest.TestCase):
    def assert_usage_error(self, expected: str, *args: str, env: dict | None = None) -> None:
        result = run("CLIENT_BIN", *args, env=env)
        self.assertEqual(result.returncode, 2, result.stderr)
        lines = result.stderr.strip().splitlines()
        self.assertLen(lines, 1, result.stderr)
        self.assertIn(expected, lines[0])

    def test_unknown_subcommand(self) -> None:
        self.assert_usage_error("invalid choice: 'pong'", "--insecure", "pong")
        # The samples' subcommands are their own clients', not the kit's.
        self.assert_usage_error("invalid choice: 'ping'", "--insecure", "ping")

    def test_missing_subcommand(self) -> None:
        self.assert_usage_error("required: SUBCOMMAND", "--insecure")

    def test_missing_token_file(self) -> None:
        self.assert_usage_error(
            "cannot read --token_file /nonexistent", "--token_file=/nonexistent", "health"
        )

    def test_no_credentials_for_an_id_token(self) -> None:
        env = {
            "GOOGLE_APPLICATION_CREDENTIALS": "/nonexistent.json",
            "GCE_METADATA_HOST": "127.0.0.1:1",
        }
        self.assert_usage_error(
            "cannot mint an ID token for audience https://example.com",
            "--server=example.com",
            "health",
            env=env,
        )

    def test_bad_global_flag_after_the_subcommand(self) -> None:
        self.assert_usage_error(
            "argument --timeout: invalid float value: 'soon'",
            "health",
            "--insecure",
            "--timeout=soon",
        )
        self.assert_usage_error(
            "unrecognized arguments: --bogus", "health", "--insecure", "--bogus"
        )
        self.assert_usage_error("not allowed with argument", "health", "--auth", "--noauth")


if __name__ == "__main__":
    absltest.main()
