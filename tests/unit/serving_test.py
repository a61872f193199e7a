"""python/testing/serving, the helper of services' tests, on the kit's own echo service: it
starts the real binary with the flags given, says why a start failed, and fails a stop whose
exit status is not 0."""

import os
from pathlib import Path
from unittest import mock

import grpc
from absl.testing import absltest
from echo.v1 import echo_pb2, echo_pb2_grpc
from pong.v1 import pong_pb2

from python.testing import serving

# Longer than the test's own timeout: a start that waited it out, instead of seeing the
# server exit, would fail the test by its timeout.
_NEVER = 3600.0


def echo(channel: grpc.Channel, message: str) -> pong_pb2.Pong:
    stub = echo_pb2_grpc.EchoServiceStub(channel)
    return stub.Echo(echo_pb2.EchoRequest(pong=pong_pb2.Pong(message=message)), timeout=10)


class ServingTest(absltest.TestCase):
    def test_serves_logs_and_stops_with_exit_0(self) -> None:
        with serving.start(os.environ["ECHO_SERVER"]) as server:
            self.assertEqual(echo(server.channel, "hi").message, "hi")
            line = server.wait_for_log(lambda entry: entry.get("method", "").endswith("/Echo"))
            self.assertEqual(line["code"], "OK")
        self.assertEqual(server.process.returncode, 0)
        self.assertTrue(any("listening on" in entry["message"] for entry in server.logs()))

    def test_the_flags_reach_the_runtime(self) -> None:
        with serving.start(os.environ["ECHO_SERVER"], "--max_receive_message_mib=0.001") as server:
            with self.assertRaises(grpc.RpcError) as raised:
                echo(server.channel, "x" * 2000)
            self.assertEqual(raised.exception.code(), grpc.StatusCode.RESOURCE_EXHAUSTED)
            self.assertEqual(echo(server.channel, "small").message, "small")

    def test_a_server_that_exits_fails_the_start_with_its_output(self) -> None:
        with self.assertRaises(serving.StartError) as raised:
            serving.start(os.environ["ECHO_SERVER"], "--no_such_flag", timeout=_NEVER)
        message = str(raised.exception)
        self.assertIn("exit code 2", message)
        self.assertIn("no_such_flag", message)

    def test_waits_for_as_many_log_lines_as_asked(self) -> None:
        def is_echo(entry: dict) -> bool:
            return entry.get("method", "").endswith("/Echo")

        with serving.start(os.environ["ECHO_SERVER"]) as server:
            for message in ("one", "two", "three"):
                echo(server.channel, message)
            self.assertLen(server.wait_for_logs(is_echo, 3), 3)
            with self.assertRaisesRegex(AssertionError, "3 of 4 matching log lines"):
                server.wait_for_logs(is_echo, 4, timeout=0.5)

    def test_the_server_gets_no_pythonpath_of_the_test(self) -> None:
        # A site hook on the test's PYTHONPATH: any interpreter of the server's that read it
        # would leave a mark.
        hook = Path(os.environ["TEST_TMPDIR"]) / "hook"
        hook.mkdir()
        mark = hook / "imported"
        (hook / "sitecustomize.py").write_text(f"open({str(mark)!r}, 'w').close()\n")
        with (
            mock.patch.dict(os.environ, {"PYTHONPATH": str(hook)}),
            serving.start(os.environ["ECHO_SERVER"]) as server,
        ):
            self.assertEqual(echo(server.channel, "hi").message, "hi")
        self.assertFalse(mark.exists(), "the server read the test's PYTHONPATH")

    def test_a_stop_fails_unless_the_exit_status_is_0(self) -> None:
        server = serving.start(os.environ["ECHO_SERVER"])
        server.process.kill()
        server.process.wait()
        with self.assertRaisesRegex(AssertionError, "exit code -9 after SIGTERM, not 0"):
            server.stop()


if __name__ == "__main__":
    absltest.main()
