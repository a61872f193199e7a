"""A service's declared smoke checks in the release, against the fake Admin API and a real ping
server: //deploy:release runs ping's check (it echoes "smoke") after health and goes on; a
release whose check expects another echo stops there, exit 1, the traffic as it was, one line
naming the service, the method, what was expected and what came back."""

from __future__ import annotations

import os

import grpc
from absl.testing import absltest
from ping.v1 import ping_pb2, ping_pb2_grpc

from tests.release.releasing import ReleaseTestCase

PING = "ping-staging"
FAILING_CHECK_RELEASE = os.environ["FAILING_CHECK_RELEASE"]


class ReleaseChecksTest(ReleaseTestCase):
    def sends(self) -> int:
        """How many Send calls the ping server answered, this one included (its pong's index)."""
        with grpc.insecure_channel(self.server.address) as channel:
            stub = ping_pb2_grpc.PingServiceStub(channel)
            return stub.Send(ping_pb2.Request(message="count"), timeout=20).pong.index

    def test_the_declared_check_passes_and_the_release_goes_on(self) -> None:
        self.api.seed(PING, f"{PING}-old")
        before = self.sends()
        done = self.release("--service=ping", "--traffic_steps=100")
        self.assertEqual(self.sends(), before + 2, "the check's Send, then this one")
        self.assertEqual(done.returncode, 0, done.stderr)
        self.assertEqual(done.results(), {PING: "released"})
        self.assertRegex(
            done.stderr,
            rf"\nping \({PING}\): smoke: 2 health checks SERVING at \S+, 1 declared checks passed ",
        )
        self.assertEqual(self.serving(PING), {done.report()["services"][0]["revision"]: 100})

    def test_a_failing_check_leaves_traffic_untouched(self) -> None:
        old = f"{PING}-old"
        self.api.seed(PING, old)
        done = self.run_tool(
            FAILING_CHECK_RELEASE, "--service=ping", f"--repository={self.registry.host}/kit"
        )
        self.assertEqual(done.returncode, 1, done.stderr)
        self.assertEqual(done.results(), {PING: "failed"})
        failed = [line for line in done.stderr.splitlines() if ": FAILED: " in line]
        self.assertLen(failed, 1, done.stderr)
        self.assertRegex(
            failed[0],
            rf"^ping \({PING}\): FAILED: smoke test failed: check ping\.v1\.PingService/Send:"
            r' expected OK with \{"pong":\{"message":"another"\}\},'
            r' got OK \{"pong":\{[^}]*"message":"smoke"[^}]*\}\}; traffic left as it was$',
        )
        self.assertNotIn("Bearer", done.stderr + done.stdout)
        new = done.report()["services"][0]["revision"]
        # Only the candidate at 0 % was written: no step, no rollback.
        self.assertEqual(
            self.api.writes[PING],
            [
                [
                    {"revisionName": old, "percent": 100},
                    {"revisionName": new, "percent": 0, "tag": "candidate"},
                ]
            ],
        )
        self.assertEqual(self.serving(PING), {old: 100})
        self.assert_server_answers()


if __name__ == "__main__":
    absltest.main()
