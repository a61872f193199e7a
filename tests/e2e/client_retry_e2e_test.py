"""The kit's client binary's side of auth and resilience, against servers the tests control: the
ID token it mints from Application Default Credentials, the channel's retry policy for
UNAVAILABLE, counted attempt by attempt at a server that refuses, and --wait_for_ready across
a restart. It calls the kit's test service's Unary (`client call`, through reflection); the
channel's own tokens are token_refresh_e2e_test.py's."""

from __future__ import annotations

import json
import os
import random
import socket
import subprocess
import tempfile
import threading
from concurrent import futures
from pathlib import Path

import grpc
from absl.testing import absltest, parameterized
from grpc_reflection.v1alpha import reflection
from kittest.v1 import test_service_pb2, test_service_pb2_grpc

from tests.e2e.fake_google import FakeGoogle, Pki
from tests.e2e.processes import KITTEST_SERVER, Server, binary, run

CALLER = "relay@kit-test.iam.gserviceaccount.com"
# What the channel's retry policy allows (README: "up to 5 attempts").
MAX_ATTEMPTS = 5
# Connections a restarting instance drops before it serves again; see the test.
RESTART_DROPS = 3
SERVICE = "kittest.v1.TestService"
UNARY = f"{SERVICE}/Unary"


def listener_outside_the_ephemeral_range() -> socket.socket:
    """A loopback listener on a port the kernel never hands out by itself.

    The port is closed and then bound again by the server. A port of the ephemeral range
    (`port=0`) could be taken in between: by any process's outgoing connection on a busy
    machine, or by the waiting client itself, whose retries to a port nobody listens on can
    connect to themselves. The server then failed with "Address already in use" (1 run in 5).
    """
    low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    for port in random.Random().sample(range(1024, low), 200):
        try:
            return socket.create_server(("127.0.0.1", port))
        except OSError:
            continue
    raise OSError(f"no free port below the ephemeral range (from {low})")


class ClientTokenTest(absltest.TestCase):
    def test_client_binary_mints_token_for_default_audience(self) -> None:
        directory = Path(tempfile.mkdtemp(dir=os.environ.get("TEST_TMPDIR")))
        pki = Pki(directory)
        google = FakeGoogle()
        self.addCleanup(google.close)
        key_file = google.service_account_file(directory, CALLER)
        with Server(
            f"--tls_cert_file={pki.server_cert}",
            f"--tls_key_file={pki.server_key}",
            "--auth_mode=verify",
            "--audiences=https://localhost",
            f"--allowed_invokers={CALLER}",
            f"--google_certs_url={google.url}/certs",
            binary_var=KITTEST_SERVER,
        ) as server:
            result = run(
                "CLIENT_BIN",
                f"--server=localhost:{server.port}",
                f"--ca_cert={pki.ca_cert}",
                "call",
                UNARY,
                "{}",
                env={"GOOGLE_APPLICATION_CREDENTIALS": str(key_file)},
            )
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertEqual(google.hits["/token"], 1)


class RefusingUnary(test_service_pb2_grpc.TestServiceServicer):
    """Answers Unary with UNAVAILABLE for the first `refusals` attempts, then with the attempt's
    number as the response's index. Keeps each attempt's `grpc-previous-rpc-attempts` header, which
    gRPC sets on the retries of its own retry policy (and on nothing else)."""

    def __init__(self, refusals: int) -> None:
        self.refusals = refusals
        self.previous_attempts: list[str | None] = []
        self._lock = threading.Lock()

    def Unary(
        self, request: test_service_pb2.UnaryRequest, context: grpc.ServicerContext
    ) -> test_service_pb2.UnaryResponse:
        previous = dict(context.invocation_metadata()).get("grpc-previous-rpc-attempts")
        with self._lock:
            self.previous_attempts.append(previous)
            attempt = len(self.previous_attempts)
        if attempt <= self.refusals:
            context.abort(grpc.StatusCode.UNAVAILABLE, f"attempt {attempt} refused")
        return test_service_pb2.UnaryResponse(index=attempt, message=request.message)


class RetryTest(parameterized.TestCase):
    def call_refusing_server(self, refusals: int) -> tuple[subprocess.CompletedProcess[str], list]:
        """Runs the client binary's `call` of Unary against a RefusingUnary (with reflection,
        which refuses nothing); its result and the grpc-previous-rpc-attempts header of every
        attempt at Unary the server saw."""
        servicer = RefusingUnary(refusals)
        server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
        test_service_pb2_grpc.add_TestServiceServicer_to_server(servicer, server)
        reflection.enable_server_reflection([SERVICE, reflection.SERVICE_NAME], server)
        port = server.add_insecure_port("127.0.0.1:0")
        server.start()
        try:
            result = run(
                "CLIENT_BIN",
                f"--server=127.0.0.1:{port}",
                "--insecure",
                "call",
                UNARY,
                '{"message": "m"}',
            )
        finally:
            server.stop(None).wait()
        return result, servicer.previous_attempts

    @parameterized.parameters(0, 1, MAX_ATTEMPTS - 1)
    def test_unavailable_is_retried_until_an_attempt_is_answered(self, refusals: int) -> None:
        result, previous_attempts = self.call_refusing_server(refusals)
        self.assertEqual(result.returncode, 0, result.stderr)
        # One line; 64-bit integers are JSON strings.
        self.assertEqual(result.stdout.count("\n"), 1, result.stdout)
        self.assertEqual(json.loads(result.stdout), {"message": "m", "index": str(refusals + 1)})
        self.assertEqual(previous_attempts, [None, *(str(n) for n in range(1, refusals + 1))])

    def test_gives_up_with_unavailable_after_five_attempts(self) -> None:
        result, previous_attempts = self.call_refusing_server(MAX_ATTEMPTS)
        self.assertEqual(result.returncode, 1)
        self.assertEqual(result.stderr, f"client: UNAVAILABLE: attempt {MAX_ATTEMPTS} refused\n")
        self.assertEqual(previous_attempts, [None, "1", "2", "3", "4"])

    def test_wait_for_ready_waits_out_a_restart(self) -> None:
        # A listener that accepts each connection and drops it stands for an instance that is
        # restarting; each connection it takes shows that the client is still trying. gRPC
        # reconnects after 1 s, then 1.6 s (+-20 %), so the real server can answer no sooner
        # than 4.1 s after the first drop: later than the retry policy alone lasts (at most
        # 0.2 + 0.4 + 0.8 + 1.6 s of backoff), so only --wait_for_ready gets the call through.
        with listener_outside_the_ephemeral_range() as restarting:
            restarting.settimeout(30)
            port = restarting.getsockname()[1]
            client = subprocess.Popen(
                [
                    binary("CLIENT_BIN"),
                    f"--server=127.0.0.1:{port}",
                    "--insecure",
                    "--wait_for_ready",
                    "--timeout=30",
                    "call",
                    UNARY,
                    '{"message": "back"}',
                ],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            self.addCleanup(client.kill)
            for _ in range(RESTART_DROPS):
                connection, _ = restarting.accept()
                connection.close()
        with Server(env={"PORT": str(port)}, binary_var=KITTEST_SERVER):
            stdout, stderr = client.communicate(timeout=30)
        self.assertEqual(client.returncode, 0, stderr)
        self.assertEqual(stdout.count("\n"), 1, stdout)
        response = json.loads(stdout)
        self.assertEqual((response["message"], response["index"]), ("back", "1"))


if __name__ == "__main__":
    absltest.main()
