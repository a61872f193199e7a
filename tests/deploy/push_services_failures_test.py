"""`bazel run //deploy:push`, every Cloud Run service of the repository, against a real registry
(Debian's docker-registry on loopback), when something fails: a service the registry refuses
leaves the others pushed, itself untagged and without a manifest file, exit 1 and a summary
line per service; so does an unexpected error in one service. A refused tag's summary says
which tags moved. A service its environment renames goes to PREFIX/NEW-NAME, and two services
bound for one repository are refused before anything is sent, as is bad input. Successful
pushes: push_services_test."""

from __future__ import annotations

import tempfile
import urllib.error
from pathlib import Path

import yaml
from absl.testing import absltest

from tests.deploy.flaky_proxy import FlakyProxy
from tests.deploy.push_services import (
    PUSH_ALL,
    PUSH_STAMPED,
    ServicesPushTestCase,
    digests,
    renamed,
    stamp_values,
)
from tests.deploy.pushing import run_push


class PushServicesFailuresTest(ServicesPushTestCase):
    def test_one_service_refused_the_other_still_pushed(self) -> None:
        # The registry refuses kittest's manifest (403 DENIED) after its blobs went up: kittest
        # fails untagged; echo, pushed after it, completes (mounting the blobs kittest left).
        def refuse_kittest_manifests(number: int, method: str, path: str) -> str | None:
            return (
                "403"
                if method == "PUT" and path.startswith("/v2/refused/kittest/manifests/")
                else None
            )

        proxy = FlakyProxy(self.registry.host, refuse_kittest_manifests)
        self.addCleanup(proxy.close)
        prefix = f"{proxy.host}/refused"
        workdir = self.workdir()
        stale = workdir / "kittest.yaml"  # from an earlier push: left alone, not replaced
        stale.write_text("stale: true\n")
        result = self.push(PUSH_ALL, prefix, workdir)

        self.assertEqual(result.returncode, 1, result.stderr)
        self.assertLen(proxy.injected, 1, proxy.injected)
        summary = result.summary()
        self.assertEqual(list(summary), ["kittest", "echo"])
        self.assertEqual(
            summary["kittest"],
            f"FAILED: registry {proxy.host} denied PUT /v2/refused/kittest/manifests/"
            f"{self.digest(self.kittest)} to anonymous access: HTTP 403: DENIED requested access "
            "to the resource is denied",
        )
        self.assert_summary(
            summary["echo"],
            f"pushed {prefix}/echo@{self.digest(self.echo)} tags latest",
        )
        self.assertIn("push failed for 1 of 2 services: kittest", result.stderr.splitlines()[-1])
        self.assertEqual(self.registry.tags("refused/kittest"), [])
        with self.assertRaises(urllib.error.HTTPError) as missing:
            self.registry.get(f"/v2/refused/kittest/manifests/{self.digest(self.kittest)}")
        missing.exception.close()
        self.assertEqual(missing.exception.code, 404)
        self.assert_pushed("refused/echo", self.echo)
        self.assertEqual(
            self.registry.tags("refused/echo"),
            ["latest", self.referrers_tag(self.echo)],
        )
        self.assertEqual(sorted(p.name for p in workdir.iterdir()), ["echo.yaml", "kittest.yaml"])
        self.assertEqual(stale.read_text(), "stale: true\n")
        self.assertLen(result.blobs("uploaded", "kittest"), 4)
        self.assertEqual(result.blobs("mounted", "echo"), digests(self.echo)[1:3])

    def test_second_service_failing_on_a_blob_is_left_untagged(self) -> None:
        # Every upload to echo's repository is refused: kittest is pushed, echo has
        # no manifest, no tag, no YAML.
        def refuse_echo_uploads(number: int, method: str, path: str) -> str | None:
            refused = path.startswith("/v2/second/echo/blobs/uploads/")
            return "403" if refused else None

        proxy = FlakyProxy(self.registry.host, refuse_echo_uploads)
        self.addCleanup(proxy.close)
        prefix = f"{proxy.host}/second"
        workdir = self.workdir()
        result = self.push(PUSH_ALL, prefix, workdir)

        self.assertEqual(result.returncode, 1, result.stderr)
        summary = result.summary()
        self.assert_summary(
            summary["kittest"], f"pushed {prefix}/kittest@{self.digest(self.kittest)} tags latest"
        )
        self.assertEqual(
            summary["echo"],
            f"FAILED: registry {proxy.host} denied POST /v2/second/echo/blobs/uploads/ "
            "to anonymous access: HTTP 403: DENIED requested access to the resource is denied",
        )
        self.assertLen(result.stdout.splitlines(), 2)
        self.assertEqual(
            self.registry.tags("second/kittest"), ["latest", self.referrers_tag(self.kittest)]
        )
        self.assertEqual(self.registry.tags("second/echo"), [])
        self.assertEqual(sorted(p.name for p in workdir.iterdir()), ["kittest.yaml"])

    def test_refused_tag_summary_says_which_tags_moved(self) -> None:
        # Tags go most specific first, `latest` last. The registry refuses the commit tag: the
        # release tag has moved, the commit tag and `latest` have not, and the summary says so.
        values = stamp_values()
        release, commit = values["STABLE_RELEASE"], f"git-{values['STABLE_GIT_COMMIT']}"

        def refuse_commit_tag(number: int, method: str, path: str) -> str | None:
            refused = method == "PUT" and path == f"/v2/tagfail/kittest/manifests/{commit}"
            return "403" if refused else None

        proxy = FlakyProxy(self.registry.host, refuse_commit_tag)
        self.addCleanup(proxy.close)
        workdir = self.workdir()
        result = self.push(PUSH_STAMPED, f"{proxy.host}/tagfail", workdir)
        self.assertEqual(result.returncode, 1, result.stderr)
        self.assertLen(proxy.injected, 1, proxy.injected)
        self.assertEqual(
            result.summary()["kittest"],
            f"FAILED: tag {commit} refused: registry {proxy.host} denied PUT "
            f"/v2/tagfail/kittest/manifests/{commit} to anonymous access: HTTP 403: DENIED "
            f"requested access to the resource is denied; tags moved: {release}; "
            f"tags not moved: {commit} latest",
        )
        self.assertEqual(
            self.registry.tags("tagfail/kittest"), [release, self.referrers_tag(self.kittest)]
        )
        self.assertEqual(list(workdir.iterdir()), [])

    def test_service_renamed_by_its_environment_goes_to_its_own_repository(self) -> None:
        # As --environment=staging builds kittest, its manifest names the service kittest-staging:
        # under --repository PREFIX it goes to PREFIX/kittest-staging, never to production's
        # PREFIX/kittest (whose `latest` it would move). Its YAML is still kittest.yaml; the summary
        # and the progress lines name both.
        spec = self.write_spec(
            [("kittest", self.kittest.root, renamed(self.built["kittest"], "kittest-staging"))]
        )
        prefix = f"{self.registry.host}/renamed"
        workdir = self.workdir()
        result = self.push(PUSH_ALL, prefix, workdir, "--spec", str(spec))
        self.assertEqual(result.returncode, 0, result.stderr)
        reference = f"{prefix}/kittest-staging@{self.digest(self.kittest)}"
        self.assertEqual(
            result.stdout, f"kittest (kittest-staging): pushed {reference} tags latest\n"
        )
        self.assertCountEqual(result.blobs("uploaded", "kittest"), digests(self.kittest))
        self.assert_pushed("renamed/kittest-staging", self.kittest)
        self.assertEqual(self.registry.tags("renamed/kittest"), [])
        self.assertEqual([p.name for p in workdir.iterdir()], ["kittest.yaml"])
        resolved = yaml.safe_load((workdir / "kittest.yaml").read_text())
        self.assertEqual(resolved["metadata"]["name"], "kittest-staging")
        image = resolved["spec"]["template"]["spec"]["containers"][0]["image"]
        self.assertEqual(image, reference)

        # Two services an environment would send to one repository: refused before sending.
        clash = self.write_spec(
            [
                ("kittest", self.kittest.root, renamed(self.built["kittest"], "echo")),
                ("echo", self.echo.root, self.built["echo"]),
            ]
        )
        workdir = self.workdir()
        result = self.push(PUSH_ALL, f"{self.registry.host}/clash", workdir, "--spec", str(clash))
        self.assertEqual(result.returncode, 2, result.stderr)
        self.assertIn(
            f"services kittest and echo would both go to {self.registry.host}/clash/echo",
            result.stderr,
        )
        self.assertEqual(result.stdout, "")
        self.assertEqual(list(workdir.iterdir()), [])
        self.assertEqual(self.registry.tags("clash/echo"), [])

    def test_unexpected_error_fails_one_service_the_next_still_pushed(self) -> None:
        # Something no handler foresaw (here a blob of the first service's image vanishes once
        # the push has started) fails that service alone: its traceback on stderr, an
        # `internal error` summary line, exit 1; the next service is pushed.
        broken = Path(tempfile.mkdtemp(dir=self.tmp)).resolve() / "image"
        (broken / "blobs" / "sha256").mkdir(parents=True)
        (broken / "index.json").write_bytes((self.echo.root / "index.json").read_bytes())
        for blob in (self.echo.root / "blobs" / "sha256").iterdir():
            (broken / "blobs" / "sha256" / blob.name).symlink_to(blob.resolve())
        config = broken / "blobs" / "sha256" / digests(self.echo)[0].partition(":")[2]
        spec = self.write_spec(
            [
                ("broken", broken, renamed(self.built["echo"], "broken")),
                ("kittest", self.kittest.root, self.built["kittest"]),
            ]
        )

        def vanish_once_started(number: int, method: str, path: str) -> str | None:
            if number == 1:  # the first request of the push: planning read every blob
                config.unlink()
            return None

        proxy = FlakyProxy(self.registry.host, vanish_once_started)
        self.addCleanup(proxy.close)
        prefix = f"{proxy.host}/internal"
        workdir = self.workdir()
        result = self.push(PUSH_ALL, prefix, workdir, "--spec", str(spec))
        self.assertEqual(result.returncode, 1, result.stderr)
        summary = result.summary()
        self.assertEqual(list(summary), ["broken", "kittest"], result.stdout)
        self.assertEqual(
            summary["broken"],
            "FAILED: internal error: FileNotFoundError: [Errno 2] No such file or directory: "
            f"'{config}'",
        )
        self.assertIn("Traceback (most recent call last)", result.stderr)
        self.assertEqual(
            summary["kittest"], f"pushed {prefix}/kittest@{self.digest(self.kittest)} tags latest"
        )
        self.assert_pushed("internal/kittest", self.kittest)
        self.assertEqual(self.registry.tags("internal/broken"), [])
        self.assertEqual([p.name for p in workdir.iterdir()], ["kittest.yaml"])
        self.assertIn("push failed for 1 of 2 services: broken", result.stderr.splitlines()[-1])

    def test_bad_input_pushes_nothing(self) -> None:
        blocked = self.tmp / "a-file"
        blocked.write_text("")
        for args, message in [
            (["--repository", "no-registry-host"], "must start with the registry host"),
            (["--repository", f"{self.registry.host}/Upper"], "not a valid OCI repository"),
            (["--repository", f"{self.registry.host}/bad", "--tag", "a:b"], "valid OCI tag"),
            (
                ["--repository", f"{self.registry.host}/bad", "--manifest_dir", str(blocked)],
                "--manifest_dir",
            ),
        ]:
            workdir = self.workdir()
            result = run_push(PUSH_ALL, *args, cwd=workdir)
            self.assertEqual(result.returncode, 2, result.stderr)
            self.assertIn(message, result.stderr)
            self.assertEqual(len(result.stderr.strip().splitlines()), 1, result.stderr)
            self.assertEqual(result.stdout, "")
            self.assertEqual(list(workdir.iterdir()), [])
        for name in ("bad/kittest", "bad/echo"):
            self.assertEqual(self.registry.tags(name), [])


if __name__ == "__main__":
    absltest.main()
