"""Every header the runtime reads, with values no well-behaved client sends (bytes that are
not UTF-8, NUL, values near and past gRPC's header size limits, the header repeated), in each
auth mode, over raw HTTP/2: the right status, no header value anywhere in the server's output,
no traceback, and a server that still answers.

Each value carries `SECRET`, as an API key sent by mistake would: it must never be printed.
"""

from __future__ import annotations

import os
import queue
import re
import time
from pathlib import Path

import grpc
import h2.exceptions
from absl.testing import absltest
from kittest.v1 import test_service_pb2 as pb
from kittest.v1 import test_service_pb2_grpc

from tests.adversarial.raw_http2 import Connection, Header, Response, grpc_frame
from tests.e2e.fake_google import FakeGoogle
from tests.e2e.processes import KITTEST_SERVER, Server

UNARY = "/kittest.v1.TestService/Unary"
HEALTH_CHECK = "/grpc.health.v1.Health/Check"
OK, CANCELLED, INTERNAL, RESOURCE_EXHAUSTED, UNIMPLEMENTED, UNAUTHENTICATED = 0, 1, 13, 8, 12, 16
SECRET = b"secret-api-key-"
AUDIENCE = "https://kittest.run.app"
EMAIL = "caller@kit-test.iam.gserviceaccount.com"
# The headers the runtime reads (the tokens; the trace headers, as --project is set; tracestate
# a relay passes on), the one gRPC reads (grpc-timeout), and custom ones nobody reads.
AUTH_HEADERS = ("authorization", "x-serverless-authorization")
OTHER_HEADERS = (
    "traceparent",
    "tracestate",
    "x-cloud-trace-context",
    "grpc-timeout",
    "user-agent",
    "x-custom",
    "x-custom-bin",
)
# Headers gRPC itself parses: a value that does not parse fails the call in gRPC, before any
# handler (INTERNAL, gRPC's choice), and gRPC's C core says so on stderr, naming only the key.
PARSED_BY_GRPC = ("grpc-timeout", "x-custom-bin")
CORE_PARSE_ERROR = re.compile(
    r"^stderr: E\d{4} [\d:.]+ +\d+ hpack_parser\.cc:\d+\] "
    r"Error parsing '([a-z-]+)' metadata: [a-z0-9 ]+$"
)
# Under gRPC's 8 KiB soft limit on all of a call's metadata (past it gRPC refuses calls at
# random), with room for the other headers and a token of about 1 KB.
NEAR_LIMIT_BYTES = 6000
# Past gRPC's hard limit (16 KiB): refused before any handler runs.
PAST_LIMIT_BYTES = 40_000
REPEATS = 3
# How long a server whose serving loop stopped may refuse connections (it checks every 0.2 s).
RESTART_SECONDS = 5.0
# Bad paths sent one after another, each once the server answers again: enough that a
# descriptor or a thread kept per stop (a listener left open, a server's pollers) passes the
# test's slack many times over.
STORM_PATHS = 10
# gRPC's core starts and retires threads of its own (executor, timer) as load comes and goes: a
# busy machine saw one more after the storm than before, which is not one per stop.
LEAK_SLACK = 2
VALUES = {
    "not UTF-8": SECRET + b"\xff\xfe",
    "NUL": SECRET + b"\x00tail",
    "near the size limit": SECRET + b"k" * NEAR_LIMIT_BYTES,
}


def process_usage(pid: int) -> dict[str, int]:
    """Open descriptors and threads of a process."""
    status = Path(f"/proc/{pid}/status").read_text()
    threads = re.search(r"^Threads:\s+(\d+)$", status, re.MULTILINE)
    assert threads is not None, status
    return {"fds": len(os.listdir(f"/proc/{pid}/fd")), "threads": int(threads[1])}


def request() -> bytes:
    return grpc_frame(pb.UnaryRequest(message="hello").SerializeToString())


class HeaderValuesTest(absltest.TestCase):
    @classmethod
    def setUpClass(cls) -> None:
        super().setUpClass()
        cls.google = FakeGoogle()
        cls.addClassCleanup(cls.google.close)
        genuine = cls.google.id_token(AUDIENCE, email=EMAIL)
        header, payload, _ = genuine.split(".")
        forwarded = f"{header}.{payload}.SIGNATURE_REMOVED_BY_GOOGLE"
        # Per mode: the server's flags, and credentials that let a call in.
        cls.modes: dict[str, tuple[list[str], list[Header]]] = {
            "none": ([], []),
            "cloud-run": (
                ["--auth_mode=cloud-run"],
                [("x-serverless-authorization", f"Bearer {forwarded}")],
            ),
            "verify": (
                [
                    "--auth_mode=verify",
                    f"--audiences={AUDIENCE}",
                    f"--google_certs_url={cls.google.url}/certs",
                ],
                [("x-serverless-authorization", f"Bearer {genuine}")],
            ),
        }

    def call(self, server: Server, *headers: Header) -> Response:
        return self.call_path(server, UNARY.encode(), *headers)

    def call_path(self, server: Server, path: bytes, *headers: Header) -> Response:
        if server.process.poll() is not None:
            server.wait()
            self.fail(f"the server died\n{server.output()}")
        with Connection(server.port, validate_headers=False) as connection:
            return connection.call(path, request(), *headers)

    def assert_nothing_leaked(self, server: Server) -> None:
        output = server.output()
        self.assertNotIn(SECRET.decode(), output)
        self.assertNotIn("Traceback", output)
        others = [line for line in server.non_json_lines() if not CORE_PARSE_ERROR.match(line)]
        self.assertEqual(others, [])

    def assert_still_answers(self, server: Server, credentials: list[Header]) -> None:
        self.assertEqual(self.call(server, *credentials).grpc_status, OK, server.output())

    def assert_answers_again(self, server: Server) -> None:
        """The server answers again within `RESTART_SECONDS`: while a new server replaces
        one whose serving loop stopped, connections are refused or reset."""
        deadline = time.monotonic() + RESTART_SECONDS
        while True:
            try:
                with Connection(server.port) as connection:
                    response = connection.call(HEALTH_CHECK, grpc_frame(b""))
                if response.ended or response.reset:
                    self.assertEqual(response.grpc_status, OK, server.output())
                    return
                # Closed unanswered: the connection reached the server whose loop stopped.
            except (ConnectionError, h2.exceptions.ProtocolError):
                pass  # refused, or closed before the call was sent (same cause)
            if time.monotonic() > deadline:
                self.fail(f"no answer {RESTART_SECONDS} s after the serving loop stopped")
            time.sleep(0.05)

    def check_mode(self, mode: str) -> None:
        flags, credentials = self.modes[mode]
        with Server("--project=kit-test", *flags, binary_var=KITTEST_SERVER) as server:
            answered = 0
            for name in (*AUTH_HEADERS, *OTHER_HEADERS):
                is_token = name in AUTH_HEADERS
                # A bad token is refused where tokens are read; elsewhere it is not read.
                expected = UNAUTHENTICATED if is_token and mode != "none" else OK
                if name in PARSED_BY_GRPC:
                    expected = INTERNAL
                prefix = b"Bearer " if is_token else b""
                others = [] if is_token else credentials
                cases: list[tuple[str, list[Header]]] = [
                    (kind, [(name, prefix + value)]) for kind, value in VALUES.items()
                ]
                cases.append(("repeated", [(name, prefix + SECRET + b"r")] * REPEATS))
                for kind, headers in cases:
                    with self.subTest(mode=mode, header=name, value=kind):
                        response = self.call(server, *others, *headers)
                        self.assertEqual(response.grpc_status, expected, response)
                        if expected == INTERNAL:
                            message = f"Error parsing '{name}' metadata"
                            self.assertTrue(response.grpc_message.startswith(message), response)
                        else:
                            answered += 1  # the handler ran, and logs a line
                with self.subTest(mode=mode, header=name, value="past the size limit"):
                    huge = (name, prefix + SECRET + b"k" * PAST_LIMIT_BYTES)
                    response = self.call(server, *others, huge)
                    self.assertTrue(
                        response.reset or response.grpc_status == RESOURCE_EXHAUSTED, response
                    )
            self.assert_still_answers(server, credentials)
            lines = server.wait_for_logs(lambda e: e.get("method") == UNARY, answered + 1)
            self.assertEqual({line["severity"] for line in lines} - {"INFO", "WARNING"}, set())
            self.assert_nothing_leaked(server)

    def test_auth_mode_none(self) -> None:
        self.check_mode("none")

    def test_auth_mode_cloud_run(self) -> None:
        self.check_mode("cloud-run")

    def test_auth_mode_verify(self) -> None:
        self.check_mode("verify")

    def test_paths_that_are_not_utf8_or_carry_nul(self) -> None:
        with Server(binary_var=KITTEST_SERVER) as server:
            for path in (
                b"/x." + SECRET + b"\xff\xfe/M",
                b"/x.\x00/M",
                b"/kittest.v1.TestService/Unary\xff",
                b"/\xff",
            ):
                with self.subTest(path=path):
                    self.assert_answers_again(server)
                    response = self.call_path(server, path)
                    # A path that is not UTF-8 stops grpc.aio's serving loop before any
                    # handler sees it: the call is cancelled or its connection closed.
                    if response.ended:
                        self.assertIn(response.grpc_status, (CANCELLED, UNIMPLEMENTED), response)
            self.assert_answers_again(server)
            self.assert_nothing_leaked(server)

    def test_bad_paths_again_and_again_leak_nothing(self) -> None:
        """Each stop of the serving loop retires a server: none stays behind (its listener,
        threads), and SIGTERM still drains at once."""
        with Server(binary_var=KITTEST_SERVER) as server:
            self.assert_answers_again(server)
            before = process_usage(server.process.pid)
            for _ in range(STORM_PATHS):
                self.call_path(server, b"/\xff")
                self.assert_answers_again(server)
            after = process_usage(server.process.pid)
            self.assertLessEqual(after["fds"], before["fds"] + LEAK_SLACK, (before, after))
            self.assertLessEqual(after["threads"], before["threads"] + LEAK_SLACK, (before, after))
            stopping = server.logs()
            self.assertEqual(
                sum("serving loop stopped" in line["message"] for line in stopping), STORM_PATHS
            )
            server.stop()  # fails unless the exit status is 0
            self.assertEqual(server.logs()[-1]["message"], "stopped")
            self.assert_nothing_leaked(server)

    def test_calls_in_flight_when_the_serving_loop_stops_finish(self) -> None:
        """A stream whose replies show its handler runs, across the stop of the serving loop."""
        notes: queue.Queue[pb.BidiRequest | None] = queue.Queue()
        with Server(binary_var=KITTEST_SERVER) as server:
            with grpc.insecure_channel(server.address) as channel:
                stub = test_service_pb2_grpc.TestServiceStub(channel)
                chat = stub.Bidi(iter(notes.get, None), timeout=2 * RESTART_SECONDS)
                for message in ("before", "still before"):
                    notes.put(pb.BidiRequest(message=message))
                self.assertEqual(next(chat).message, "before")  # the handler runs
                self.call_path(server, b"/\xff")
                self.assert_answers_again(server)
                notes.put(pb.BidiRequest(message="after"))
                notes.put(None)
                self.assertEqual([reply.message for reply in chat], ["still before", "after"])
                self.assertEqual(chat.code(), grpc.StatusCode.OK)
            # SIGTERM drains the new server and the old one's last calls alike.
            server.stop()  # fails unless the exit status is 0
            self.assertEqual(server.logs()[-1]["message"], "stopped")
            self.assert_nothing_leaked(server)


if __name__ == "__main__":
    absltest.main()
