"""The server's stdout as Cloud Logging reads it: JSON lines, traces, labels, and no secrets;
and as people read it at a terminal: text, coloured when the terminal allows."""

from __future__ import annotations

import errno
import json
import os
import re
import subprocess
import tempfile
import threading

import grpc
from absl.testing import absltest
from kittest.v1 import test_service_pb2 as pb
from kittest.v1 import test_service_pb2_grpc

from python.testing import serving
from tests.e2e.processes import KITTEST_SERVER, STARTUP_TIMEOUT_SECONDS, Server, binary

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
SECRET = "eyJhbGciOiJSUzI1NiJ9.secret-token-value"
CLOUD_RUN_ENV = {
    "GOOGLE_CLOUD_PROJECT": "kit-test",
    "K_SERVICE": "kittest",
    "K_REVISION": "kittest-7",
}


def is_unary(entry: dict) -> bool:
    return entry.get("method") == "/kittest.v1.TestService/Unary"


ESC = "\x1b"
# A text line: date, time with milliseconds, severity (maybe coloured), [pid], message.
TEXT_LINE = re.compile(
    r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} (?P<severity>\S+) \[\d+\] (?P<message>.*)$"
)
LISTENING = re.compile(r"listening on \[::\]:(\d+)")
COLOURED = {"INFO": "\x1b[32mINFO\x1b[0m", "WARNING": "\x1b[33mWARNING\x1b[0m"}
# A colour terminal, whatever the environment the test runs in.
TERMINAL_ENV = {"TERM": "xterm-256color", "NO_COLOR": ""}


class PtyServer:
    """The kit's test server with its stdout on a pseudo-terminal, read continuously on a thread
    (a full pty would block the server's writes). `lines` are without the terminal's \\r\\n."""

    def __init__(self, *args: str, env: dict[str, str]) -> None:
        master, slave = os.openpty()
        self._master = master
        self._stderr = tempfile.TemporaryFile()  # noqa: SIM115 (closed by __exit__)
        self.lines: list[str] = []
        self._changed = threading.Condition()
        self._closed = False
        try:
            self.process = subprocess.Popen(
                [binary(KITTEST_SERVER), *args],
                env=serving.child_environment({"PORT": "0", **env}),
                stdin=subprocess.DEVNULL,
                stdout=slave,
                stderr=self._stderr,
            )
        finally:
            os.close(slave)  # the child holds it: reads end (EIO) once the server exits
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        listening = LISTENING.search(self.wait_for(LISTENING.search))
        assert listening is not None
        self.address = f"localhost:{listening[1]}"

    def _read(self) -> None:
        pending = b""
        while True:
            try:
                chunk = os.read(self._master, 65536)
            except OSError as error:  # EIO: every slave descriptor is closed
                if error.errno != errno.EIO:
                    raise
                chunk = b""
            if not chunk:
                break
            *whole, pending = (pending + chunk).split(b"\n")
            with self._changed:
                self.lines += [
                    line.decode(errors="backslashreplace").rstrip("\r") for line in whole
                ]
                self._changed.notify_all()
        with self._changed:
            if pending:
                self.lines.append(pending.decode(errors="backslashreplace"))
            self._closed = True
            self._changed.notify_all()

    def wait_for(self, predicate, timeout: float = STARTUP_TIMEOUT_SECONDS) -> str:
        """The first line on the terminal for which `predicate` holds, waiting for it."""

        def found() -> list[str]:
            return [line for line in self.lines if predicate(line)]

        with self._changed:
            self._changed.wait_for(lambda: found() or self._closed, timeout)
            if found():
                return found()[0]
        raise AssertionError(f"no such line in {timeout} s\n{self.output()}")

    def output(self) -> str:
        self._stderr.seek(0)
        stderr = self._stderr.read().decode(errors="backslashreplace")
        with self._changed:
            stdout = "\n".join(self.lines)
        return f"exit code {self.process.poll()}\n--- stdout:\n{stdout}\n--- stderr:\n{stderr}"

    def stop(self) -> int:
        self.process.terminate()
        code = self.process.wait(30)
        self._reader.join(5)
        return code

    def __enter__(self) -> PtyServer:
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        self._reader.join(5)
        os.close(self._master)
        self._stderr.close()


def call_and_fail_relay(address: str) -> None:
    """One call that ends OK (logged INFO) and one that ends FAILED_PRECONDITION (WARNING)."""
    with grpc.insecure_channel(address) as channel:
        stub = test_service_pb2_grpc.TestServiceStub(channel)
        reply = stub.Unary(pb.UnaryRequest(message="on a tty"), timeout=10)
        assert reply.message == "on a tty", reply
        try:
            stub.Relay(pb.RelayRequest(), timeout=10)  # no upstream configured
        except grpc.RpcError as error:
            assert error.code() == grpc.StatusCode.FAILED_PRECONDITION, error
        else:
            raise AssertionError("Relay without an upstream succeeded")


class LogsTest(absltest.TestCase):
    def test_rpc_log_line_with_cloud_trace_header(self) -> None:
        with (
            Server(env=CLOUD_RUN_ENV, binary_var=KITTEST_SERVER) as server,
            grpc.insecure_channel(server.address) as ch,
        ):
            metadata = [
                ("x-cloud-trace-context", f"{TRACE_ID}/1234567890;o=1"),
                ("authorization", f"Bearer {SECRET}"),
            ]
            test_service_pb2_grpc.TestServiceStub(ch).Unary(
                pb.UnaryRequest(message="traced"), metadata=metadata, timeout=10
            )
            entry = server.wait_for_log(is_unary)
            everything = "".join(server.lines)
        self.assertEqual(entry["severity"], "INFO")
        self.assertEqual(entry["code"], "OK")
        self.assertRegex(entry["latency"], r"^\d+\.\d{6}s$")
        self.assertRegex(entry["peer"], r"^ipv[46]:")
        self.assertTrue(entry["time"].startswith("20"))
        self.assertEqual(
            entry["logging.googleapis.com/trace"], f"projects/kit-test/traces/{TRACE_ID}"
        )
        self.assertEqual(entry["logging.googleapis.com/spanId"], f"{1234567890:016x}")
        self.assertIs(entry["logging.googleapis.com/trace_sampled"], True)
        self.assertEqual(
            entry["logging.googleapis.com/labels"], {"service": "kittest", "revision": "kittest-7"}
        )
        self.assertNotIn("secret-token-value", everything)

    def test_w3c_traceparent_and_error_codes(self) -> None:
        with (
            Server(env=CLOUD_RUN_ENV, binary_var=KITTEST_SERVER) as server,
            grpc.insecure_channel(server.address) as ch,
        ):
            stub = test_service_pb2_grpc.TestServiceStub(ch)
            traceparent = f"00-{TRACE_ID}-00f067aa0ba902b7-00"
            stub.Unary(pb.UnaryRequest(), metadata=[("traceparent", traceparent)], timeout=10)
            with self.assertRaises(grpc.RpcError):
                stub.Relay(pb.RelayRequest(), timeout=10)  # no upstream configured
            sent = server.wait_for_log(is_unary)
            failed = server.wait_for_log(lambda e: e.get("code") == "FAILED_PRECONDITION")
        self.assertEqual(sent["logging.googleapis.com/spanId"], "00f067aa0ba902b7")
        self.assertIs(sent["logging.googleapis.com/trace_sampled"], False)
        self.assertEqual(failed["method"], "/kittest.v1.TestService/Relay")
        self.assertNotIn("logging.googleapis.com/trace", failed)

    def test_every_stdout_line_is_json(self) -> None:
        with (
            Server(env=CLOUD_RUN_ENV, binary_var=KITTEST_SERVER) as server,
            grpc.insecure_channel(server.address) as ch,
        ):
            test_service_pb2_grpc.TestServiceStub(ch).Unary(pb.UnaryRequest(), timeout=10)
            server.wait_for_log(is_unary)
            server.stop()  # fails unless the exit status is 0
        entries = server.logs()
        self.assertLen(entries, len(server.lines))
        self.assertEqual(entries[-1]["message"], "stopped")

    def test_text_format_for_people(self) -> None:
        with Server("--log_format=text", binary_var=KITTEST_SERVER) as server:
            self.assertFalse(server.lines[0].startswith("{"))
            self.assertIn("INFO", server.lines[0])

    def test_pipe_gets_json_without_colour_even_from_a_colour_terminal(self) -> None:
        with Server(env=TERMINAL_ENV, binary_var=KITTEST_SERVER) as server:
            call_and_fail_relay(server.address)
            server.wait_for_log(lambda e: e.get("code") == "FAILED_PRECONDITION")
            server.stop()  # fails unless the exit status is 0
        self.assertEqual(server.non_json_lines(), [])
        self.assertEqual([line for line in server.lines if ESC in line], [])
        severities = {entry["severity"] for entry in server.logs()}
        self.assertEqual(severities, {"INFO", "WARNING"})

    def test_forced_text_on_a_pipe_is_never_coloured(self) -> None:
        with Server("--log_format=text", env=TERMINAL_ENV, binary_var=KITTEST_SERVER) as server:
            call_and_fail_relay(server.address)
            server.stop()  # fails unless the exit status is 0
        self.assert_text(server.lines, coloured=False)

    def test_terminal_gets_coloured_text(self) -> None:
        lines = self.run_on_terminal(env=TERMINAL_ENV)
        self.assert_text(lines, coloured=True)

    def test_no_color_on_a_terminal(self) -> None:
        lines = self.run_on_terminal(env={**TERMINAL_ENV, "NO_COLOR": "1"})
        self.assert_text(lines, coloured=False)

    def test_dumb_terminal(self) -> None:
        lines = self.run_on_terminal(env={**TERMINAL_ENV, "TERM": "dumb"})
        self.assert_text(lines, coloured=False)

    def test_forced_json_on_a_terminal(self) -> None:
        lines = self.run_on_terminal("--log_format=json", env=TERMINAL_ENV)
        entries = [json.loads(line) for line in lines]  # fails on any line that is not JSON
        self.assertTrue(all(isinstance(entry, dict) for entry in entries), "\n".join(lines))
        self.assertEqual([line for line in lines if ESC in line], [])
        send = [e for e in entries if is_unary(e)]
        self.assertLen(send, 1)
        self.assertEqual((send[0]["severity"], send[0]["code"]), ("INFO", "OK"))
        self.assertEqual(entries[-1]["message"], "stopped")

    def run_on_terminal(self, *args: str, env: dict[str, str]) -> list[str]:
        """Every line the server printed on a terminal, having answered one call OK and failed
        one, then stopped on SIGTERM."""
        with PtyServer(*args, env=env) as server:
            call_and_fail_relay(server.address)
            server.wait_for(lambda line: "FAILED_PRECONDITION" in line, timeout=10)
            self.assertEqual(server.stop(), 0, server.output())
            return list(server.lines)

    def assert_text(self, lines: list[str], *, coloured: bool) -> None:
        """Every line is a text line; the severity, and nothing else, is coloured or not."""
        output = "\n".join(map(repr, lines))  # escape codes shown, not obeyed
        parsed = [TEXT_LINE.match(line) for line in lines]
        self.assertNotIn(None, parsed, output)
        for line, match in zip(lines, parsed, strict=True):
            self.assertNotIn(ESC, match["message"], line)
            self.assertEqual(ESC in match["severity"], coloured, line)
        want = COLOURED if coloured else {name: name for name in COLOURED}
        by_message = {m["message"].split(" {")[0]: m["severity"] for m in parsed}
        self.assertEqual(by_message.get("/kittest.v1.TestService/Unary OK"), want["INFO"], output)
        self.assertEqual(
            by_message.get("/kittest.v1.TestService/Relay FAILED_PRECONDITION"),
            want["WARNING"],
            output,
        )
        self.assertEqual(parsed[0]["severity"], want["INFO"], output)
        self.assertRegex(parsed[0]["message"], LISTENING)
        self.assertEqual(parsed[-1]["message"].split(" {")[0], "stopped", output)


if __name__ == "__main__":
    absltest.main()
