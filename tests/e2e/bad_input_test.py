"""Bad input to a server on the kit's runtime gets one clear line on stderr and the documented
exit code, never a traceback. The client's own are client_bad_input_test.py."""

from __future__ import annotations

import socket

from absl.testing import absltest

from tests.e2e.processes import KITTEST_SERVER, Server, run

EXIT_USAGE = 2


class BadInputTest(absltest.TestCase):
    def assert_one_line_error(self, stderr: str, expected: str) -> None:
        lines = stderr.strip().splitlines()
        self.assertLen(lines, 1, f"expected one line, got: {stderr!r}")
        self.assertIn(expected, lines[0])
        self.assertNotIn("Traceback", stderr)

    def test_port_not_a_number(self) -> None:
        result = run(KITTEST_SERVER, env={"PORT": "abc"})
        self.assertEqual(result.returncode, EXIT_USAGE)
        self.assert_one_line_error(result.stderr, "PORT='abc' is not a port number")

    def test_port_out_of_range(self) -> None:
        result = run(KITTEST_SERVER, "--port=70000")
        self.assertEqual(result.returncode, EXIT_USAGE)
        self.assert_one_line_error(result.stderr, "--port is out of range")

    def test_message_limits_must_be_positive(self) -> None:
        for flag in ("--max_send_message_mib=-1", "--max_receive_message_mib=0"):
            result = run(KITTEST_SERVER, flag, env={"PORT": "0"})
            self.assertEqual(result.returncode, EXIT_USAGE)
            self.assert_one_line_error(result.stderr, f"{flag.split('=')[0]} must be more than 0")

    def test_port_in_use_by_another_server(self) -> None:
        with Server(binary_var=KITTEST_SERVER) as first:
            result = run(KITTEST_SERVER, env={"PORT": str(first.port)})
            self.assertEqual(result.returncode, EXIT_USAGE)
            self.assert_one_line_error(result.stderr, f"cannot listen on [::]:{first.port}")

    def test_port_in_use_by_any_socket(self) -> None:
        with socket.create_server(("::", 0), family=socket.AF_INET6, dualstack_ipv6=True) as busy:
            port = busy.getsockname()[1]
            result = run(KITTEST_SERVER, env={"PORT": str(port)})
        self.assertEqual(result.returncode, EXIT_USAGE)
        self.assert_one_line_error(result.stderr, "cannot listen")

    def test_malformed_upstream_is_a_usage_error(self) -> None:
        for upstream in ("host:99999", "a:b:c"):
            result = run(KITTEST_SERVER, f"--upstream={upstream}", env={"PORT": "0"})
            self.assertEqual(result.returncode, EXIT_USAGE)
            self.assert_one_line_error(
                result.stderr, f"--upstream: {upstream!r} is not host[:port]"
            )

    def test_unknown_server_flag(self) -> None:
        result = run(KITTEST_SERVER, "--no_such_flag")
        self.assertEqual(result.returncode, EXIT_USAGE)
        self.assertIn("no_such_flag", result.stderr)
        self.assertNotIn("Traceback", result.stderr)


if __name__ == "__main__":
    absltest.main()
