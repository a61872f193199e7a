"""`bazel run //deploy:push`, every Cloud Run service of the repository, against a real registry
(Debian's docker-registry on loopback), when it succeeds: each service to PREFIX/SERVICE with
its blobs, manifest and tag, base layers mounted from the first service's repository rather
than uploaded twice, one resolved YAML per service; a second push uploads nothing; after a
change to one service only its app layer and config go up. Tags go most specific first,
`latest` last. Failures and refusals: push_services_failures_test."""

from __future__ import annotations

import yaml
from absl.testing import absltest

from tests.deploy.flaky_proxy import FlakyProxy
from tests.deploy.push_services import (
    PUSH_AFTER_A_CHANGE,
    PUSH_ALL,
    PUSH_KITTEST,
    PUSH_STAMPED,
    ServicesPushTestCase,
    digests,
    stamp_values,
)


class PushServicesTest(ServicesPushTestCase):
    def test_push_all_again_and_after_a_change_to_one_service(self) -> None:
        prefix = f"{self.registry.host}/kit"
        workdir = self.workdir()
        first = self.push(PUSH_ALL, prefix, workdir)
        self.assertEqual(first.returncode, 0, first.stderr)
        kittest, echo = digests(self.kittest), digests(self.echo)
        # The same two base layers under both; each service its own app layer and config.
        self.assertEqual(kittest[1:3], echo[1:3])
        self.assertEqual(len(set(kittest + echo)), 6)

        # kittest first: everything uploaded. echo: the base layers mounted from kit/kittest.
        self.assertCountEqual(first.blobs("uploaded", "kittest"), kittest)
        self.assertEqual(first.blobs("mounted", "kittest"), [])
        self.assertEqual(first.blobs("mounted", "echo"), echo[1:3])
        self.assertCountEqual(first.blobs("uploaded", "echo"), [echo[0], echo[3]])
        self.assertLen(first.blobs("uploaded"), 6)
        self.assertLen(first.blobs("skipped"), 0)
        self.assertIn(f"mounted {echo[1]}", first.stderr)
        self.assertIn("from kit/kittest", first.stderr)

        kittest_ref = f"{prefix}/kittest@{self.digest(self.kittest)}"
        echo_ref = f"{prefix}/echo@{self.digest(self.echo)}"
        self.assertEqual(list(first.summary()), ["kittest", "echo"])
        self.assert_summary(first.summary()["kittest"], f"pushed {kittest_ref} tags latest")
        self.assert_summary(first.summary()["echo"], f"pushed {echo_ref} tags latest")
        self.assert_pushed("kit/kittest", self.kittest)
        self.assert_pushed("kit/echo", self.echo)
        # `latest`, and the referrers index of the SBOM (push_sbom_test checks it).
        kittest_tags = ["latest", self.referrers_tag(self.kittest)]
        self.assertEqual(self.registry.tags("kit/kittest"), kittest_tags)
        echo_tags = ["latest", self.referrers_tag(self.echo)]
        self.assertEqual(self.registry.tags("kit/echo"), echo_tags)

        # One manifest per service, named after it, resolved for where it went; nothing else.
        self.assertEqual(sorted(p.name for p in workdir.iterdir()), ["echo.yaml", "kittest.yaml"])
        self.assert_resolved_manifest(
            workdir / "kittest.yaml", "kittest", f"{prefix}/kittest", self.digest(self.kittest)
        )
        self.assert_resolved_manifest(
            workdir / "echo.yaml",
            "echo",
            f"{prefix}/echo",
            self.digest(self.echo),
        )

        # Again: nothing to upload, nothing to mount.
        second = self.push(PUSH_ALL, prefix, workdir)
        self.assertEqual(second.returncode, 0, second.stderr)
        self.assertEqual(second.blobs("uploaded"), [])
        self.assertEqual(second.blobs("mounted"), [])
        self.assertCountEqual(second.blobs("skipped", "kittest"), kittest)
        self.assertCountEqual(second.blobs("skipped", "echo"), echo)
        self.assertEqual(second.stderr.count("blobs: 0 uploaded, 0 mounted, 4 already there"), 2)
        self.assertEqual(second.stdout, first.stdout)

        # kittest's main.py got one more line: only its app layer and config go up.
        variant = digests(self.kittest_variant)
        self.assertEqual(variant[1:3], kittest[1:3])
        third = self.push(PUSH_AFTER_A_CHANGE, prefix, workdir)
        self.assertEqual(third.returncode, 0, third.stderr)
        self.assertCountEqual(third.blobs("uploaded"), [variant[0], variant[3]])
        self.assertCountEqual(third.blobs("uploaded", "kittest"), [variant[0], variant[3]])
        self.assertCountEqual(third.blobs("skipped", "kittest"), variant[1:3])
        self.assertCountEqual(third.blobs("skipped", "echo"), echo)
        self.assertEqual(third.blobs("mounted"), [])
        self.assert_pushed("kit/kittest", self.kittest_variant)  # `latest` moved to the new image
        self.assert_pushed("kit/echo", self.echo)
        resolved = yaml.safe_load((workdir / "kittest.yaml").read_text())
        image = resolved["spec"]["template"]["spec"]["containers"][0]["image"]
        self.assertEqual(image, f"{prefix}/kittest@{self.digest(self.kittest_variant)}")
        self.assertEqual(sorted(p.name for p in workdir.iterdir()), ["echo.yaml", "kittest.yaml"])

    def test_registry_that_does_not_mount_gets_an_upload(self) -> None:
        # A registry that answers a mount with 202 (an upload session) instead of 201: the
        # blob goes up in that session, and the image is whole.
        def no_mount(number: int, method: str, path: str) -> str | None:
            return "no mount" if method == "POST" and "mount=" in path else None

        proxy = FlakyProxy(self.registry.host, no_mount)
        self.addCleanup(proxy.close)
        prefix = f"{proxy.host}/unmounted"
        result = self.push(PUSH_ALL, prefix, self.workdir())
        self.assertEqual(result.returncode, 0, result.stderr)
        # One per shared base layer, and the SBOM's empty config.
        self.assertLen(proxy.injected, 3, proxy.injected)
        self.assertEqual(result.blobs("mounted"), [])
        self.assertCountEqual(result.blobs("uploaded", "echo"), digests(self.echo))
        self.assertEqual(result.stderr.count("registry declined to mount"), 3)
        self.assert_pushed("unmounted/echo", self.echo)
        self.assert_pushed("unmounted/kittest", self.kittest)

    def test_one_service_push(self) -> None:
        prefix = f"{self.registry.host}/single"
        workdir = self.workdir()
        result = self.push(PUSH_KITTEST, prefix, workdir)
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertEqual(list(result.summary()), ["kittest"])
        self.assert_summary(
            result.summary()["kittest"],
            f"pushed {prefix}/kittest@{self.digest(self.kittest)} tags latest",
        )
        self.assertEqual([p.name for p in workdir.iterdir()], ["kittest.yaml"])
        self.assertEqual(
            self.registry.tags("single/kittest"), ["latest", self.referrers_tag(self.kittest)]
        )
        self.assertEqual(self.registry.tags("single/echo"), [])

    def test_manifest_dir_and_extra_tags(self) -> None:
        prefix = f"{self.registry.host}/elsewhere"
        out = self.tmp / "manifests" / "out"
        result = self.push(
            PUSH_ALL, prefix, self.workdir(), "--manifest_dir", str(out), "--tag", "v1"
        )
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertEqual(sorted(p.name for p in out.iterdir()), ["echo.yaml", "kittest.yaml"])
        for service, layout in [("kittest", self.kittest), ("echo", self.echo)]:
            self.assertEqual(
                self.registry.tags(f"elsewhere/{service}"),
                ["latest", self.referrers_tag(layout), "v1"],
            )
        self.assertIn(" tags v1 latest", result.summary()["kittest"])  # `latest` moves last

    def test_stamped_tags_come_from_the_workspace_status(self) -> None:
        values = stamp_values()
        expected = sorted(
            [
                "latest",
                values["STABLE_RELEASE"],
                f"git-{values['STABLE_GIT_COMMIT']}",
                self.referrers_tag(self.kittest),
            ]
        )
        prefix = f"{self.registry.host}/stamped"
        result = self.push(PUSH_STAMPED, prefix, self.workdir())
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertEqual(self.registry.tags("stamped/kittest"), expected)

        unstamped = self.push(PUSH_ALL, f"{self.registry.host}/unstamped", self.workdir())
        self.assertEqual(unstamped.returncode, 0, unstamped.stderr)
        self.assertIn("stamped tags", unstamped.stderr)  # skipped without --stamp, and says so
        self.assertEqual(
            self.registry.tags("unstamped/kittest"), ["latest", self.referrers_tag(self.kittest)]
        )


if __name__ == "__main__":
    absltest.main()
