"""Bad input to the client binary gets one clear line on stderr and the documented exit code,
never a traceback. The client's subcommands are the samples' (ping, route guide): these tests go
with the client's code for a sample when that sample is deleted."""

from __future__ import annotations

import socket

from absl.testing import absltest

from tests.e2e import point_cases
from tests.e2e.processes import run

EXIT_RPC_FAILED = 1
EXIT_USAGE = 2


class ClientBadInputTest(absltest.TestCase):
    def assert_one_line_error(self, stderr: str, expected: str) -> None:
        lines = stderr.strip().splitlines()
        self.assertLen(lines, 1, f"expected one line, got: {stderr!r}")
        self.assertIn(expected, lines[0])
        self.assertNotIn("Traceback", stderr)

    def test_client_to_nothing_listening_is_unavailable(self) -> None:
        with socket.socket() as probe:  # a port that was free a moment ago, with no listener
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        result = run(
            "CLIENT_BIN", f"--server=127.0.0.1:{port}", "--insecure", "--timeout=20", "ping"
        )
        self.assertEqual(result.returncode, EXIT_RPC_FAILED)
        self.assert_one_line_error(result.stderr, "UNAVAILABLE")

    def test_client_malformed_server(self) -> None:
        for server in ("host:port", "a:1:2", "host:99999", ""):
            with self.subTest(server=server):
                result = run("CLIENT_BIN", f"--server={server}", "--insecure", "ping")
                self.assertEqual(result.returncode, EXIT_USAGE)
                self.assert_one_line_error(result.stderr, "--server must be host[:port]")

    def test_client_bad_points(self) -> None:
        # Refused before any call: the server named does not listen, so a call would be exit 1.
        # Flags before the subcommand for half of them, after the point for the others.
        nowhere = ("--server=127.0.0.1:1", "--insecure")
        for index, (point, message) in enumerate(point_cases.BAD.items()):
            args = (
                (*nowhere, "get-feature", point) if index % 2 else ("get-feature", point, *nowhere)
            )
            with self.subTest(args=args):
                result = run("CLIENT_BIN", *args)
                self.assertEqual(result.returncode, EXIT_USAGE, result.stderr)
                self.assertEqual(result.stderr, f"client: argument point: {message} (see --help)\n")
                self.assertEqual(result.stdout, "")

    def test_client_bad_points_in_other_subcommands(self) -> None:
        nowhere = ("--server=127.0.0.1:1", "--insecure")
        for args, expected in (
            (("list-features", "-90.0,-180.0", "90.0000001,0"), "argument hi: '90.0000001,0'"),
            (("record-route", "-1.0,-1.0", "-1,-1"), "argument points: '-1,-1' could be"),
            (("chat", "-1.0,-1.0:ok", "-91.0,0:no"), "argument notes: '-91.0,0': latitude"),
            (("chat", "-1.0,-1.0:ok", "-1.0,-1.0"), "a note is LAT,LON:message, got '-1.0,-1.0'"),
        ):
            with self.subTest(args=args):
                result = run("CLIENT_BIN", *args, *nowhere)
                self.assertEqual(result.returncode, EXIT_USAGE, result.stderr)
                self.assert_one_line_error(result.stderr, expected)


if __name__ == "__main__":
    absltest.main()
