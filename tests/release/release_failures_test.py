"""The release of the kit's test services (kittest, echo) when things go wrong, against the fake
Admin API: a revision that never becomes Ready or fails (reason printed, traffic untouched, exit
1), a smoke test that fails (traffic untouched) and a health check that fails after a step
(rolled back), the API answering 409, 429 and 503 (retried), missing, malformed or refused
credentials (one line and the report, exit 1, no token shown), and bad input (exit 2, nothing
sent)."""

from __future__ import annotations

from absl.testing import absltest

from tests.e2e.processes import KITTEST_SERVER, Server
from tests.release.fake_run_api import FAIL, NEVER, Fault
from tests.release.releasing import ReleaseTestCase, closed_port_url

KITTEST = "kittest-staging"
OLD = f"{KITTEST}-old"


class ReleaseFailuresTest(ReleaseTestCase):
    def setUp(self) -> None:
        super().setUp()
        self.api.seed(KITTEST, OLD)

    def test_revision_never_ready(self) -> None:
        self.api.modes[KITTEST] = NEVER
        done = self.release("--service=kittest")
        self.assertEqual(done.returncode, 1, done.stderr)
        self.assertEqual(done.results(), {KITTEST: "failed"})
        error = done.report()["services"][0]["error"]
        self.assertIn(
            "not Ready within 3 s: Ready=Unknown Deploying: Starting the container.", error
        )
        self.assertIn("traffic left as it was", error)
        self.assertIn(f"FAILED: {error}", done.stderr)
        self.assertEqual(self.serving(KITTEST), {OLD: 100})
        self.assertLen(self.api.writes[KITTEST], 1)  # the candidate at 0 %, nothing after

    def test_revision_failed_prints_cloud_runs_reason(self) -> None:
        self.api.modes[KITTEST] = FAIL
        done = self.release("--service=kittest")
        self.assertEqual(done.returncode, 1, done.stderr)
        error = done.report()["services"][0]["error"]
        self.assertIn(
            "Ready=False HealthCheckContainerError: The user-provided container failed the "
            "configured startup probe checks.",
            error,
        )
        self.assertEqual(self.serving(KITTEST), {OLD: 100})

    def test_smoke_test_fails_traffic_untouched(self) -> None:
        self.api.tag_urls["candidate"] = closed_port_url()
        done = self.release("--service=kittest", "--smoke_timeout=1")
        self.assertEqual(done.returncode, 1, done.stderr)
        error = done.report()["services"][0]["error"]
        self.assertIn("smoke test failed", error)
        # Smoke calls wait for a connection (a cold start), until their deadline.
        self.assertIn("reflection: DEADLINE_EXCEEDED", error)
        self.assertEqual(self.serving(KITTEST), {OLD: 100})
        self.assert_server_answers()

    def test_health_check_fails_after_a_step_rolls_back(self) -> None:
        # The candidate's own server, stopped once it has 10 %: its next health check fails.
        candidate = Server(binary_var=KITTEST_SERVER)
        self.addCleanup(candidate.stop)
        self.api.tag_urls["candidate"] = f"http://127.0.0.1:{candidate.port}"
        shifted = []

        def break_candidate(service: str, traffic: list[dict]) -> None:
            entry = [e for e in traffic if e.get("tag") == "candidate"]
            if entry and entry[0]["percent"] == 10:
                shifted.append(service)
                candidate.stop()

        self.api.on_write = break_candidate
        done = self.release("--service=kittest", "--smoke_timeout=1")
        self.assertEqual(shifted, [KITTEST])
        self.assertEqual(done.returncode, 1, done.stderr)
        self.assertEqual(done.results(), {KITTEST: "rolled back"})
        error = done.report()["services"][0]["error"]
        self.assertIn("health check at 10% failed", error)
        self.assertIn(f"traffic back on {OLD}=100%", error)
        self.assertEqual(self.serving(KITTEST), {OLD: 100})
        new = done.report()["services"][0]["revision"]
        self.assertEqual(
            self.api.writes[KITTEST][-1],
            [
                {"revisionName": OLD, "percent": 100},
                {"revisionName": new, "percent": 0, "tag": "candidate"},
            ],
        )

    def test_api_error_during_a_step_rolls_back(self) -> None:
        self.api.faults.append(Fault("PUT", 500, after=1))  # the candidate's write goes through
        done = self.release("--service=kittest")
        self.assertEqual(done.returncode, 1, done.stderr)
        self.assertEqual(done.results(), {KITTEST: "rolled back"})
        error = done.report()["services"][0]["error"]
        self.assertRegex(error, r"^the 10% step failed: PUT .*: HTTP 500 INTERNAL: injected fault")
        self.assertEqual(self.serving(KITTEST), {OLD: 100})

    def test_conflict_then_ok_and_busy_answers_retried(self) -> None:
        self.api.faults += [
            Fault("GET", 429, "0.2"),
            Fault("PUT", 409),
            Fault("PUT", 503, "0.1"),
            Fault("GET", 503),
        ]
        done = self.release("--service=kittest")
        self.assertEqual(done.returncode, 0, done.stderr)
        self.assertEqual(done.results(), {KITTEST: "released"})
        self.assertEqual(self.api.faults, [])
        self.assertIn("HTTP 429 from the Admin API, retrying in 0.2 s", done.stderr)
        self.assertIn("HTTP 503 from the Admin API, retrying in 0.1 s", done.stderr)
        # No Retry-After: the call's backoff, doubled once already by its 429.
        self.assertIn("HTTP 503 from the Admin API, retrying in 2 s", done.stderr)
        self.assertIn("conflict, reading it again", done.stderr)

    def test_busy_past_the_deadline_is_one_clear_error(self) -> None:
        self.api.faults += [Fault("GET", 503, "1")] * 5
        done = self.release("--service=kittest", "--api_deadline=2")
        self.assertEqual(done.returncode, 1, done.stderr)
        error = done.report()["services"][0]["error"]
        self.assertRegex(
            error, r"HTTP 503 UNAVAILABLE: injected fault; gave up after 2 s of retries$"
        )
        self.assertEqual(self.serving(KITTEST), {OLD: 100})

    def test_missing_credentials(self) -> None:
        env = self.env()
        del env["GOOGLE_APPLICATION_CREDENTIALS"]
        env["HOME"] = str(self.tmp / "nobody-home")  # no gcloud ADC file there
        env["CLOUDSDK_CONFIG"] = str(self.tmp / "no-gcloud")
        done = self.release("--service=kittest", env=env)
        self.assertEqual(done.returncode, 1, done.stderr)
        why = (
            "no Google Application Default Credentials: run `gcloud auth "
            "application-default login`, or set GOOGLE_APPLICATION_CREDENTIALS to a key file"
        )
        self.assertEqual(done.stderr.strip().splitlines(), [f"release: {why}"])
        # The pipeline still gets its report, saying why nothing was released.
        self.assertFalse(done.report()["ok"])
        self.assertEqual(done.results(), {KITTEST: "failed"})
        self.assertEqual(done.report()["services"][0]["error"], f"not released: {why}")
        self.assertEqual(self.api.requests, [])

    def test_key_file_that_is_not_one(self) -> None:
        for garbage in (b"{not json", b'{"type": "service_account"}', b"\xff\xfe"):
            key = self.tmp / "garbage-key.json"
            key.write_bytes(garbage)
            env = self.env()
            env["GOOGLE_APPLICATION_CREDENTIALS"] = str(key)
            done = self.release("--service=kittest", env=env)
            self.assertEqual(done.returncode, 1, done.stderr)
            lines = done.stderr.strip().splitlines()
            self.assertLen(lines, 1, done.stderr)  # one line, no traceback
            self.assertTrue(
                lines[0].startswith(
                    f"release: GOOGLE_APPLICATION_CREDENTIALS={key} is not a usable key file: "
                ),
                lines[0],
            )
            self.assertEqual(done.results(), {KITTEST: "failed"})
        self.assertEqual(self.api.requests, [])

    def test_refused_credentials(self) -> None:
        self.api.token = "another-token"  # the one ADC gives is now refused (expired, revoked)
        done = self.release("--service=kittest")
        self.assertEqual(done.returncode, 1, done.stderr)
        last = done.stderr.strip().splitlines()[-1]
        self.assertRegex(
            last,
            r"^release: the Admin API refused the credentials: GET .* HTTP 401 UNAUTHENTICATED",
        )
        self.assertNotIn(self.google.access_token, done.stderr + done.stdout)
        self.assertEqual(self.serving(KITTEST), {OLD: 100})

    def test_bad_input_sends_nothing(self) -> None:
        for args, message in [
            (
                ["--environment=nowhere"],
                "--environment='nowhere': no such environment (have: local, production, staging)",
            ),
            (
                ["--service=kittset"],
                "--service kittset: not a service of staging (have: echo, kittest)",
            ),
            (
                ["--traffic_steps=50,10"],
                "--traffic_steps '50,10': rising percents from 1, ending at 100",
            ),
        ]:
            done = self.release(*args)
            self.assertEqual(done.returncode, 2, done.stderr)
            self.assertEqual(done.stderr.strip(), f"release: {message}")
        self.assertEqual(self.api.requests, [])


if __name__ == "__main__":
    absltest.main()
