"""`--auth_mode=verify` while Google's certificate URL hangs: calls must not queue behind one
fetch after another. With no certificates yet, every waiting call gets UNAVAILABLE after one
fetch times out; with a copy that has expired, calls go on with it while the fetch hangs."""

from __future__ import annotations

import concurrent.futures
import http.server
import json
import threading
import time

import grpc
from absl.testing import absltest
from kittest.v1 import test_service_pb2 as pb
from kittest.v1 import test_service_pb2_grpc

from tests.e2e.fake_google import FakeGoogle
from tests.e2e.processes import KITTEST_SERVER, Server

AUDIENCE = "https://kittest.run.app"
# python/server/certs.py's FETCH_TIMEOUT_SECONDS, and a margin for four calls to come back.
FETCH_TIMEOUT_SECONDS = 5.0
MARGIN_SECONDS = 3.0


class CertsUrl:
    """Google's certificate URL, answering with `certs` (max-age 1 s) or hanging."""

    def __init__(self, certs: dict[str, str]) -> None:
        self.hang = threading.Event()
        self.released = threading.Event()
        self.requests = 0
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                outer.requests += 1
                if outer.hang.is_set():
                    outer.released.wait(60)
                    return
                body = json.dumps(certs).encode()
                self.send_response(200)
                self.send_header("Cache-Control", "public, max-age=1")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/certs"
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.released.set()
        self._server.shutdown()
        self._server.server_close()


class CertsOutageTest(absltest.TestCase):
    def setUp(self) -> None:
        super().setUp()
        self.google = FakeGoogle()
        self.addCleanup(self.google.close)
        self.certs = CertsUrl(self.google.certs)
        self.addCleanup(self.certs.close)
        self.server = self.enterContext(
            Server(
                "--auth_mode=verify",
                f"--audiences={AUDIENCE}",
                f"--google_certs_url={self.certs.url}",
                binary_var=KITTEST_SERVER,
            )
        )
        self.token = self.google.id_token(AUDIENCE)

    def concurrent_calls(self, count: int) -> list[tuple[grpc.StatusCode, float]]:
        def call(_: int) -> tuple[grpc.StatusCode, float]:
            started = time.monotonic()
            with grpc.insecure_channel(self.server.address) as channel:
                try:
                    test_service_pb2_grpc.TestServiceStub(channel).Unary(
                        pb.UnaryRequest(),
                        metadata=[("authorization", f"Bearer {self.token}")],
                        timeout=60,
                    )
                    code = grpc.StatusCode.OK
                except grpc.RpcError as error:
                    code = error.code()
            return code, time.monotonic() - started

        with concurrent.futures.ThreadPoolExecutor(count) as pool:
            return list(pool.map(call, range(count)))

    def test_no_certificates_yet_one_fetch_then_unavailable_for_all(self) -> None:
        self.certs.hang.set()
        results = self.concurrent_calls(4)
        self.assertEqual([code for code, _ in results], [grpc.StatusCode.UNAVAILABLE] * 4)
        slowest = max(seconds for _, seconds in results)
        self.assertLess(slowest, FETCH_TIMEOUT_SECONDS + MARGIN_SECONDS, results)
        self.assertEqual(self.certs.requests, 1)
        # Right after a failed fetch, calls are answered at once, without another fetch.
        ((code, seconds),) = self.concurrent_calls(1)
        self.assertEqual(code, grpc.StatusCode.UNAVAILABLE)
        self.assertLess(seconds, 1.0)
        self.assertEqual(self.certs.requests, 1)
        line = self.server.wait_for_log(lambda e: e.get("code") == "UNAVAILABLE")
        self.assertEqual(line["method"], "/kittest.v1.TestService/Unary")
        self.assertNotIn("Traceback", self.server.output())

    def test_expired_copy_serves_while_the_fetch_hangs(self) -> None:
        self.assertEqual(self.concurrent_calls(1)[0][0], grpc.StatusCode.OK)
        self.certs.hang.set()
        time.sleep(1.5)  # the copy's max-age of 1 s has passed
        results = self.concurrent_calls(4)
        self.assertEqual([code for code, _ in results], [grpc.StatusCode.OK] * 4)
        self.assertLess(max(seconds for _, seconds in results), 1.0, results)
        # One fetch in the background, not one a call: it reaches the URL soon after the calls.
        deadline = time.monotonic() + 5
        while self.certs.requests < 2 and time.monotonic() < deadline:
            time.sleep(0.01)
        self.assertEqual(self.certs.requests, 2)


if __name__ == "__main__":
    absltest.main()
