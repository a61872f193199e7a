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
    PUSH_AFTER_PING_CHANGE,
    PUSH_ALL,
    PUSH_PING,
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
        ping, route_guide = digests(self.ping), digests(self.route_guide)
        # The same two base layers under both; each service its own app layer and config.
        self.assertEqual(ping[1:3], route_guide[1:3])
        self.assertEqual(len(set(ping + route_guide)), 6)

        # ping first: everything uploaded. route-guide: the base layers mounted from kit/ping.
        self.assertCountEqual(first.blobs("uploaded", "ping"), ping)
        self.assertEqual(first.blobs("mounted", "ping"), [])
        self.assertEqual(first.blobs("mounted", "route-guide"), route_guide[1:3])
        self.assertCountEqual(
            first.blobs("uploaded", "route-guide"), [route_guide[0], route_guide[3]]
        )
        self.assertLen(first.blobs("uploaded"), 6)
        self.assertLen(first.blobs("skipped"), 0)
        self.assertIn(f"mounted {route_guide[1]}", first.stderr)
        self.assertIn("from kit/ping", first.stderr)

        ping_ref = f"{prefix}/ping@{self.digest(self.ping)}"
        route_guide_ref = f"{prefix}/route-guide@{self.digest(self.route_guide)}"
        self.assertEqual(list(first.summary()), ["ping", "route-guide"])
        self.assert_summary(first.summary()["ping"], f"pushed {ping_ref} tags latest")
        self.assert_summary(first.summary()["route-guide"], f"pushed {route_guide_ref} tags latest")
        self.assert_pushed("kit/ping", self.ping)
        self.assert_pushed("kit/route-guide", self.route_guide)
        # `latest`, and the referrers index of the SBOM (push_sbom_test checks it).
        ping_tags = ["latest", self.referrers_tag(self.ping)]
        self.assertEqual(self.registry.tags("kit/ping"), ping_tags)
        route_guide_tags = ["latest", self.referrers_tag(self.route_guide)]
        self.assertEqual(self.registry.tags("kit/route-guide"), route_guide_tags)

        # One manifest per service, named after it, resolved for where it went; nothing else.
        self.assertEqual(
            sorted(p.name for p in workdir.iterdir()), ["ping.yaml", "route-guide.yaml"]
        )
        self.assert_resolved_manifest(
            workdir / "ping.yaml", "ping", f"{prefix}/ping", self.digest(self.ping)
        )
        self.assert_resolved_manifest(
            workdir / "route-guide.yaml",
            "route-guide",
            f"{prefix}/route-guide",
            self.digest(self.route_guide),
        )

        # Again: nothing to upload, nothing to mount.
        second = self.push(PUSH_ALL, prefix, workdir)
        self.assertEqual(second.returncode, 0, second.stderr)
        self.assertEqual(second.blobs("uploaded"), [])
        self.assertEqual(second.blobs("mounted"), [])
        self.assertCountEqual(second.blobs("skipped", "ping"), ping)
        self.assertCountEqual(second.blobs("skipped", "route-guide"), route_guide)
        self.assertEqual(second.stderr.count("blobs: 0 uploaded, 0 mounted, 4 already there"), 2)
        self.assertEqual(second.stdout, first.stdout)

        # ping's main.py got one more line: only its app layer and config go up.
        variant = digests(self.ping_variant)
        self.assertEqual(variant[1:3], ping[1:3])
        third = self.push(PUSH_AFTER_PING_CHANGE, prefix, workdir)
        self.assertEqual(third.returncode, 0, third.stderr)
        self.assertCountEqual(third.blobs("uploaded"), [variant[0], variant[3]])
        self.assertCountEqual(third.blobs("uploaded", "ping"), [variant[0], variant[3]])
        self.assertCountEqual(third.blobs("skipped", "ping"), variant[1:3])
        self.assertCountEqual(third.blobs("skipped", "route-guide"), route_guide)
        self.assertEqual(third.blobs("mounted"), [])
        self.assert_pushed("kit/ping", self.ping_variant)  # `latest` moved to the new image
        self.assert_pushed("kit/route-guide", self.route_guide)
        resolved = yaml.safe_load((workdir / "ping.yaml").read_text())
        image = resolved["spec"]["template"]["spec"]["containers"][0]["image"]
        self.assertEqual(image, f"{prefix}/ping@{self.digest(self.ping_variant)}")
        self.assertEqual(
            sorted(p.name for p in workdir.iterdir()), ["ping.yaml", "route-guide.yaml"]
        )

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
        self.assertCountEqual(result.blobs("uploaded", "route-guide"), digests(self.route_guide))
        self.assertEqual(result.stderr.count("registry declined to mount"), 3)
        self.assert_pushed("unmounted/route-guide", self.route_guide)
        self.assert_pushed("unmounted/ping", self.ping)

    def test_one_service_push(self) -> None:
        prefix = f"{self.registry.host}/single"
        workdir = self.workdir()
        result = self.push(PUSH_PING, prefix, workdir)
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertEqual(list(result.summary()), ["ping"])
        self.assert_summary(
            result.summary()["ping"], f"pushed {prefix}/ping@{self.digest(self.ping)} tags latest"
        )
        self.assertEqual([p.name for p in workdir.iterdir()], ["ping.yaml"])
        self.assertEqual(
            self.registry.tags("single/ping"), ["latest", self.referrers_tag(self.ping)]
        )
        self.assertEqual(self.registry.tags("single/route-guide"), [])

    def test_manifest_dir_and_extra_tags(self) -> None:
        prefix = f"{self.registry.host}/elsewhere"
        out = self.tmp / "manifests" / "out"
        result = self.push(
            PUSH_ALL, prefix, self.workdir(), "--manifest_dir", str(out), "--tag", "v1"
        )
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertEqual(sorted(p.name for p in out.iterdir()), ["ping.yaml", "route-guide.yaml"])
        for service, layout in [("ping", self.ping), ("route-guide", self.route_guide)]:
            self.assertEqual(
                self.registry.tags(f"elsewhere/{service}"),
                ["latest", self.referrers_tag(layout), "v1"],
            )
        self.assertIn(" tags v1 latest", result.summary()["ping"])  # `latest` moves last

    def test_stamped_tags_come_from_the_workspace_status(self) -> None:
        values = stamp_values()
        expected = sorted(
            [
                "latest",
                values["STABLE_RELEASE"],
                f"git-{values['STABLE_GIT_COMMIT']}",
                self.referrers_tag(self.ping),
            ]
        )
        prefix = f"{self.registry.host}/stamped"
        result = self.push(PUSH_STAMPED, prefix, self.workdir())
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertEqual(self.registry.tags("stamped/ping"), expected)

        unstamped = self.push(PUSH_ALL, f"{self.registry.host}/unstamped", self.workdir())
        self.assertEqual(unstamped.returncode, 0, unstamped.stderr)
        self.assertIn("stamped tags", unstamped.stderr)  # skipped without --stamp, and says so
        self.assertEqual(
            self.registry.tags("unstamped/ping"), ["latest", self.referrers_tag(self.ping)]
        )


if __name__ == "__main__":
    absltest.main()
