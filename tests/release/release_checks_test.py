"""A service's declared smoke checks in the release, against the fake Admin API and a real server
of the kit's test service: :release runs kittest's check (it echoes "smoke") after health and
goes on; a
release whose check expects another echo stops there, exit 1, the traffic as it was, one line
naming the service, the method, what was expected and what came back."""

from __future__ import annotations

import os

import grpc
from absl.testing import absltest
from kittest.v1 import test_service_pb2, test_service_pb2_grpc

from tests.release.releasing import ReleaseTestCase

KITTEST = "kittest-staging"
FAILING_CHECK_RELEASE = os.environ["FAILING_CHECK_RELEASE"]


class ReleaseChecksTest(ReleaseTestCase):
    def sends(self) -> int:
        """How many Unary calls the server answered, this one included (its answer's index)."""
        with grpc.insecure_channel(self.server.address) as channel:
            stub = test_service_pb2_grpc.TestServiceStub(channel)
            return stub.Unary(test_service_pb2.UnaryRequest(message="count"), timeout=20).index

    def test_the_declared_check_passes_and_the_release_goes_on(self) -> None:
        self.api.seed(KITTEST, f"{KITTEST}-old")
        before = self.sends()
        done = self.release("--service=kittest", "--traffic_steps=100")
        self.assertEqual(self.sends(), before + 2, "the check's Unary, then this one")
        self.assertEqual(done.returncode, 0, done.stderr)
        self.assertEqual(done.results(), {KITTEST: "released"})
        self.assertRegex(
            done.stderr,
            rf"\nkittest \({KITTEST}\): smoke: 2 health checks SERVING at \S+, "
            r"1 declared checks passed ",
        )
        self.assertEqual(self.serving(KITTEST), {done.report()["services"][0]["revision"]: 100})

    def test_a_failing_check_leaves_traffic_untouched(self) -> None:
        old = f"{KITTEST}-old"
        self.api.seed(KITTEST, old)
        done = self.run_tool(
            FAILING_CHECK_RELEASE, "--service=kittest", f"--repository={self.registry.host}/kit"
        )
        self.assertEqual(done.returncode, 1, done.stderr)
        self.assertEqual(done.results(), {KITTEST: "failed"})
        failed = [line for line in done.stderr.splitlines() if ": FAILED: " in line]
        self.assertLen(failed, 1, done.stderr)
        self.assertRegex(
            failed[0],
            rf"^kittest \({KITTEST}\): FAILED: smoke test failed: check "
            r'kittest\.v1\.TestService/Unary: expected OK with \{"message":"another"\},'
            r' got OK \{[^}]*"message":"smoke"[^}]*\}; traffic left as it was$',
        )
        self.assertNotIn("Bearer", done.stderr + done.stdout)
        new = done.report()["services"][0]["revision"]
        # Only the candidate at 0 % was written: no step, no rollback.
        self.assertEqual(
            self.api.writes[KITTEST],
            [
                [
                    {"revisionName": old, "percent": 100},
                    {"revisionName": new, "percent": 0, "tag": "candidate"},
                ]
            ],
        )
        self.assertEqual(self.serving(KITTEST), {old: 100})
        self.assert_server_answers()


if __name__ == "__main__":
    absltest.main()
