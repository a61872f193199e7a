"""Bad input gets one clear line on stderr and the documented exit code, never a traceback."""

from __future__ import annotations

import socket

from absl.testing import absltest

from tests.e2e import point_cases
from tests.e2e.processes import PING_SERVER, Server, run

EXIT_RPC_FAILED = 1
EXIT_USAGE = 2


class BadInputTest(absltest.TestCase):
    def assert_one_line_error(self, stderr: str, expected: str) -> None:
        lines = stderr.strip().splitlines()
        self.assertLen(lines, 1, f"expected one line, got: {stderr!r}")
        self.assertIn(expected, lines[0])
        self.assertNotIn("Traceback", stderr)

    def test_port_not_a_number(self) -> None:
        result = run(PING_SERVER, env={"PORT": "abc"})
        self.assertEqual(result.returncode, EXIT_USAGE)
        self.assert_one_line_error(result.stderr, "PORT='abc' is not a port number")

    def test_port_out_of_range(self) -> None:
        result = run(PING_SERVER, "--port=70000")
        self.assertEqual(result.returncode, EXIT_USAGE)
        self.assert_one_line_error(result.stderr, "--port is out of range")

    def test_message_limits_must_be_positive(self) -> None:
        for flag in ("--max_send_message_mib=-1", "--max_receive_message_mib=0"):
            result = run(PING_SERVER, flag, env={"PORT": "0"})
            self.assertEqual(result.returncode, EXIT_USAGE)
            self.assert_one_line_error(result.stderr, f"{flag.split('=')[0]} must be more than 0")

    def test_port_in_use_by_another_server(self) -> None:
        with Server(binary_var=PING_SERVER) as first:
            result = run(PING_SERVER, env={"PORT": str(first.port)})
            self.assertEqual(result.returncode, EXIT_USAGE)
            self.assert_one_line_error(result.stderr, f"cannot listen on [::]:{first.port}")

    def test_port_in_use_by_any_socket(self) -> None:
        with socket.create_server(("::", 0), family=socket.AF_INET6, dualstack_ipv6=True) as busy:
            port = busy.getsockname()[1]
            result = run(PING_SERVER, env={"PORT": str(port)})
        self.assertEqual(result.returncode, EXIT_USAGE)
        self.assert_one_line_error(result.stderr, "cannot listen")

    def test_malformed_upstream_of_the_ping_service(self) -> None:
        for upstream in ("host:99999", "a:b:c"):
            result = run(PING_SERVER, f"--upstream={upstream}", env={"PORT": "0"})
            self.assertEqual(result.returncode, EXIT_USAGE)
            self.assert_one_line_error(
                result.stderr, f"--upstream: {upstream!r} is not host[:port]"
            )

    def test_unknown_server_flag(self) -> None:
        result = run(PING_SERVER, "--no_such_flag")
        self.assertEqual(result.returncode, EXIT_USAGE)
        self.assertIn("no_such_flag", result.stderr)
        self.assertNotIn("Traceback", result.stderr)

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
