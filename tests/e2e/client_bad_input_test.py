"""Bad input to the kit's client binary gets one clear line on stderr and the documented exit
code, never a traceback. A sample's own bad input (route guide's points and notes) is tested
beside the sample (python/services/route_guide/client_points_test.py)."""

from __future__ import annotations

import socket

from absl.testing import absltest

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
            "CLIENT_BIN", f"--server=127.0.0.1:{port}", "--insecure", "--timeout=20", "health"
        )
        self.assertEqual(result.returncode, EXIT_RPC_FAILED)
        self.assert_one_line_error(result.stderr, "UNAVAILABLE")

    def test_client_malformed_server(self) -> None:
        for server in ("host:port", "a:1:2", "host:99999", ""):
            with self.subTest(server=server):
                result = run("CLIENT_BIN", f"--server={server}", "--insecure", "health")
                self.assertEqual(result.returncode, EXIT_USAGE)
                self.assert_one_line_error(result.stderr, "--server must be host[:port]")


if __name__ == "__main__":
    absltest.main()
