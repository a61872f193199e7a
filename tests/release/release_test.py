"""The release of the kit's test services (kittest, echo) against a fake Admin API on loopback
(fake_run_api.py), pushing to a real registry and smoke-testing a real server of the kit's test
service: a first release of both services, a release over a revision that serves (candidate at
0 %, then the traffic steps as the API saw them, then `previous` tagged), a no-op, a dry run,
and the rollback command."""

from __future__ import annotations

from absl.testing import absltest

from tests.release.releasing import ReleaseTestCase

KITTEST, ECHO = "kittest-staging", "echo-staging"


class ReleaseTest(ReleaseTestCase):
    def test_first_release_of_both_then_no_op(self) -> None:
        first = self.release()
        self.assertEqual(first.returncode, 0, first.stderr)
        self.assertEqual(first.results(), {KITTEST: "released", ECHO: "released"})
        for service in first.report()["services"]:
            revision = service["revision"]
            self.assertRegex(revision, rf"^{service['name']}-[0-9a-f]{{10}}$")
            self.assertEqual(self.serving(service["name"]), {revision: 100})
            self.assertEqual(
                [s["name"] for s in service["steps"]],
                ["push", "revision", "ready", "smoke", "traffic"],
            )
            stored = self.api.services[service["name"]]
            image = stored["spec"]["template"]["spec"]["containers"][0]["image"]
            self.assertRegex(
                image, rf"^{self.registry.host}/kit/{service['name']}@sha256:[0-9a-f]{{64}}$"
            )
        self.assertEqual(self.registry.tags(f"kit/{KITTEST}")[0], "latest")
        self.assertIn(f"{'kittest (kittest-staging)'}: smoke:", first.stderr)

        writes = self.api.count("PUT") + self.api.count("POST")
        again = self.release()
        self.assertEqual(again.returncode, 0, again.stderr)
        self.assertEqual(again.results(), {KITTEST: "no-op", ECHO: "no-op"})
        self.assertIn("already serves 100%, no revision made", again.stderr)
        self.assertEqual(self.api.count("PUT") + self.api.count("POST"), writes)
        self.assert_server_answers()

    def test_release_over_a_serving_revision_steps_traffic_then_rollback(self) -> None:
        self.api.seed(KITTEST, f"{KITTEST}-old")
        # A tag URL as a local Cloud Run gives it: a name under .localhost (RFC 6761: loopback,
        # whatever the resolver knows), the host routed by :authority.
        port = self.backend.rpartition(":")[2]
        self.api.tag_urls["candidate"] = f"http://candidate---{KITTEST}.my-project.localhost:{port}"
        done = self.release("--service=kittest")
        self.assertEqual(done.returncode, 0, done.stderr)
        self.assertEqual(done.results(), {KITTEST: "released"})
        new = done.report()["services"][0]["revision"]
        old = f"{KITTEST}-old"
        # What the API was asked, write by write: the candidate at 0 %, the steps, `previous`.
        self.assertEqual(
            self.api.writes[KITTEST],
            [
                [
                    {"revisionName": old, "percent": 100},
                    {"revisionName": new, "percent": 0, "tag": "candidate"},
                ],
                [
                    {"revisionName": new, "percent": 10, "tag": "candidate"},
                    {"revisionName": old, "percent": 90},
                ],
                [
                    {"revisionName": new, "percent": 50, "tag": "candidate"},
                    {"revisionName": old, "percent": 50},
                ],
                [
                    {"revisionName": new, "percent": 100, "tag": "candidate"},
                    {"revisionName": old, "percent": 0, "tag": "previous"},
                ],
            ],
        )
        self.assertNotIn(ECHO, self.api.services)
        table = [line for line in done.stderr.splitlines() if ": traffic: " in line]
        self.assertLen(table, 3)
        self.assertIn(
            f"SERVING at http://candidate---{KITTEST}.my-project.localhost:{port}", done.stderr
        )

        back = self.rollback("--service=kittest")
        self.assertEqual(back.returncode, 0, back.stderr)
        self.assertEqual(back.results(), {KITTEST: "rolled back"})
        self.assertEqual(self.serving(KITTEST), {old: 100})
        again = self.rollback("--service=kittest")
        self.assertEqual(again.returncode, 0, again.stderr)
        self.assertEqual(again.results(), {KITTEST: "no-op"})

    def test_rollback_without_a_previous_tag_goes_to_the_revision_before(self) -> None:
        """Versions deployed by hand (no release reached 100 %, so no `previous` tag): the
        revision created before the serving one, from the service's revision list."""
        for version in ("one", "two", "three"):
            self.api.seed(KITTEST, f"{KITTEST}-{version}")
        back = self.rollback("--service=kittest")
        self.assertEqual(back.returncode, 0, back.stderr)
        self.assertEqual(back.results(), {KITTEST: "rolled back"})
        self.assertEqual(self.serving(KITTEST), {f"{KITTEST}-two": 100})
        self.assertIn(f"rollback: 100% to {KITTEST}-two (was {KITTEST}-three)", back.stderr)
        self.assertIn(
            (
                "GET",
                f"/apis/serving.knative.dev/v1/namespaces/my-project/revisions"
                f"?labelSelector=serving.knative.dev%2Fservice%3D{KITTEST}",
            ),
            self.api.requests,
        )
        again = self.rollback("--service=kittest")  # now tagged `previous`: nothing changes
        self.assertEqual(again.returncode, 0, again.stderr)
        self.assertEqual(again.results(), {KITTEST: "no-op"})
        self.assertEqual(self.serving(KITTEST), {f"{KITTEST}-two": 100})

    def test_rollback_of_a_service_with_one_revision_says_why(self) -> None:
        self.api.seed(KITTEST, f"{KITTEST}-only")
        back = self.rollback("--service=kittest")
        self.assertEqual(back.returncode, 1, back.stderr)
        self.assertEqual(back.results(), {KITTEST: "failed"})
        self.assertIn(f"no Ready revision older than {KITTEST}-only to roll back to", back.stdout)
        self.assertEqual(self.serving(KITTEST), {f"{KITTEST}-only": 100})

    def test_a_revision_of_this_build_that_no_longer_serves_is_the_candidate_again(self) -> None:
        first = self.release("--service=kittest")
        self.assertEqual(first.returncode, 0, first.stderr)
        ours = first.report()["services"][0]["revision"]
        self.api.seed(KITTEST, f"{KITTEST}-by-hand")  # someone deployed another version since
        again = self.release("--service=kittest", "--traffic_steps=50,100")
        self.assertEqual(again.returncode, 0, again.stderr)
        self.assertEqual(again.results(), {KITTEST: "released"})
        self.assertEqual(again.report()["services"][0]["revision"], ours)
        self.assertEqual(self.serving(KITTEST), {ours: 100})
        self.assertLen(self.api.revisions, 2)  # no third: the build's revision was reused

    def test_dry_run_validates_only(self) -> None:
        done = self.release("--dry_run")
        self.assertEqual(done.returncode, 0, done.stderr)
        self.assertEqual(done.results(), {KITTEST: "validated", ECHO: "validated"})
        self.assertEqual(self.api.services, {})
        writes = [p for m, p in self.api.requests if m in ("PUT", "POST")]
        self.assertLen(writes, 2)
        self.assertTrue(all(p.endswith("?dryRun=all") for p in writes), writes)

    def test_summary_table_without_json(self) -> None:
        self.api.seed(KITTEST, f"{KITTEST}-old")
        done = self.release("--service=kittest", "--traffic_steps=100", as_json=False)
        self.assertEqual(done.returncode, 0, done.stderr)
        header, row = done.stdout.splitlines()
        self.assertEqual(
            header.split()[:5], ["SERVICE", "RESULT", "REVISION", "TRAFFIC", "SECONDS"]
        )
        self.assertIn("kittest (kittest-staging)  released", row)


if __name__ == "__main__":
    absltest.main()
