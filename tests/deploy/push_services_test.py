"""`bazel run //deploy:push`, every Cloud Run service of the repository, against a real registry
(Debian's docker-registry on loopback): each service to PREFIX/SERVICE with its blobs, manifest
and tag, base layers mounted from the first service's repository rather than uploaded twice,
one resolved YAML per service; a second push uploads nothing; after a change to one service
only its app layer and config go up; a service the registry refuses leaves the others pushed,
itself untagged and without a manifest file, exit 1 and a summary line per service; so does an
unexpected error in one service. A service its environment renames goes to PREFIX/NEW-NAME.
Tags go most specific first, `latest` last, and a refused tag's summary says which moved."""

from __future__ import annotations

import copy
import json
import os
import tempfile
import urllib.error
from pathlib import Path

import yaml
from absl.testing import absltest

from tests.deploy.flaky_proxy import FlakyProxy
from tests.deploy.oci_layout import Layout, image_outputs
from tests.deploy.pushing import PushResult, run_push
from tests.deploy.registry_server import RegistryServer

PUSH_ALL = os.environ["PUSH_ALL"]
PUSH_PING = os.environ["PUSH_PING"]
PUSH_AFTER_PING_CHANGE = os.environ["PUSH_AFTER_PING_CHANGE"]
PUSH_STAMPED = os.environ["PUSH_STAMPED"]


def digests(layout: Layout) -> list[str]:
    """The config's, then each layer's digest, as the push goes through them."""
    return [d["digest"] for d in [layout.manifest["config"], *layout.manifest["layers"]]]


def renamed(manifest: dict, name: str) -> dict:
    """The built manifest of a service as an environment that renames it builds it."""
    manifest = copy.deepcopy(manifest)
    manifest["metadata"]["name"] = name
    return manifest


def stamp_values() -> dict[str, str]:
    """The workspace status the stamped push targets were built with."""
    status = Path(os.environ["RUNFILES_DIR"], "_main", "stable-status.txt").read_text()
    return dict(line.partition(" ")[::2] for line in status.splitlines())


class PushServicesTest(absltest.TestCase):
    @classmethod
    def setUpClass(cls) -> None:
        cls.tmp = Path(tempfile.mkdtemp(dir=os.environ.get("TEST_TMPDIR")))
        cls.registry = RegistryServer(cls.tmp / "registry").start()
        cls.addClassCleanup(cls.registry.stop)
        cls.ping = Layout(image_outputs("IMAGE")[0])
        cls.route_guide = Layout(image_outputs("ROUTE_GUIDE_IMAGE")[0])
        cls.ping_variant = Layout(image_outputs("VARIANT_IMAGE")[0])
        cls.built = {
            "ping": yaml.safe_load(Path(os.environ["PING_MANIFEST"]).read_text()),
            "route-guide": yaml.safe_load(Path(os.environ["ROUTE_GUIDE_MANIFEST"]).read_text()),
        }

    def workdir(self) -> Path:
        """A directory to run the push from, as a user's shell would be."""
        return Path(tempfile.mkdtemp(dir=self.tmp))

    def push(self, launcher: str, prefix: str, workdir: Path, *args: str) -> PushResult:
        return run_push(launcher, "--repository", prefix, *args, cwd=workdir)

    def write_spec(self, services: list[tuple[str, Path, dict]]) -> Path:
        """A push spec as cloud_run_push writes it, for (spec name, image layout, manifest)
        each, tagged `latest`: given to a push target with `--spec`, it replaces the target's."""
        directory = Path(tempfile.mkdtemp(dir=self.tmp))
        entries = []
        for name, layout, manifest in services:
            manifest_file = directory / f"{name}.built.yaml"
            manifest_file.write_text(yaml.safe_dump(manifest))
            entries.append(
                {
                    "service": name,
                    "image": str(layout.resolve()),
                    "manifest": str(manifest_file),
                    "tags": ["latest"],
                    "stamped_tags": [],
                }
            )
        spec = directory / "push.json"
        spec.write_text(json.dumps({"repository": "", "services": entries, "status_files": []}))
        return spec

    def digest(self, layout: Layout) -> str:
        return layout.manifest_descriptor["digest"]

    def assert_pushed(self, name: str, layout: Layout, tag: str = "latest") -> None:
        """The image is in repository `name` byte for byte, and `tag` names it."""
        manifest, headers = self.registry.get(f"/v2/{name}/manifests/{self.digest(layout)}")
        self.assertEqual(manifest, layout.blob(layout.manifest_descriptor))
        for descriptor in [layout.manifest["config"], *layout.manifest["layers"]]:
            blob, _ = self.registry.get(f"/v2/{name}/blobs/{descriptor['digest']}")
            self.assertEqual(blob, layout.blob(descriptor), descriptor["digest"])
        _, headers = self.registry.get(f"/v2/{name}/manifests/{tag}")
        self.assertEqual(headers["Docker-Content-Digest"], self.digest(layout))

    def assert_resolved_manifest(
        self, path: Path, service: str, repository: str, digest: str
    ) -> None:
        """`path` is the build's manifest of `service` with only its image moved."""
        resolved = yaml.safe_load(path.read_text())
        container = resolved["spec"]["template"]["spec"]["containers"][0]
        self.assertEqual(container["image"], f"{repository}@{digest}")
        built = self.built[service]
        container["image"] = built["spec"]["template"]["spec"]["containers"][0]["image"]
        self.assertEqual(resolved, built)

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
        self.assertEqual(
            first.stdout.splitlines(),
            [
                f"ping: pushed {ping_ref} tags latest",
                f"route-guide: pushed {route_guide_ref} tags latest",
            ],
        )
        self.assert_pushed("kit/ping", self.ping)
        self.assert_pushed("kit/route-guide", self.route_guide)
        self.assertEqual(self.registry.tags("kit/ping"), ["latest"])
        self.assertEqual(self.registry.tags("kit/route-guide"), ["latest"])

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
        self.assertLen(proxy.injected, 2, proxy.injected)  # one per shared base layer
        self.assertEqual(result.blobs("mounted"), [])
        self.assertCountEqual(result.blobs("uploaded", "route-guide"), digests(self.route_guide))
        self.assertEqual(result.stderr.count("registry declined to mount"), 2)
        self.assert_pushed("unmounted/route-guide", self.route_guide)
        self.assert_pushed("unmounted/ping", self.ping)

    def test_one_service_refused_the_other_still_pushed(self) -> None:
        # The registry refuses ping's manifest (403 DENIED) after its blobs went up: ping fails
        # untagged; route-guide, pushed after it, completes (mounting the blobs ping left).
        def refuse_ping_manifests(number: int, method: str, path: str) -> str | None:
            return (
                "403"
                if method == "PUT" and path.startswith("/v2/refused/ping/manifests/")
                else None
            )

        proxy = FlakyProxy(self.registry.host, refuse_ping_manifests)
        self.addCleanup(proxy.close)
        prefix = f"{proxy.host}/refused"
        workdir = self.workdir()
        stale = workdir / "ping.yaml"  # from an earlier push: left alone, not replaced
        stale.write_text("stale: true\n")
        result = self.push(PUSH_ALL, prefix, workdir)

        self.assertEqual(result.returncode, 1, result.stderr)
        self.assertLen(proxy.injected, 1, proxy.injected)
        summary = result.summary()
        self.assertEqual(list(summary), ["ping", "route-guide"])
        self.assertEqual(
            summary["ping"],
            f"FAILED: registry {proxy.host} denied PUT /v2/refused/ping/manifests/"
            f"{self.digest(self.ping)} to anonymous access: HTTP 403: DENIED requested access "
            "to the resource is denied",
        )
        self.assertEqual(
            summary["route-guide"],
            f"pushed {prefix}/route-guide@{self.digest(self.route_guide)} tags latest",
        )
        self.assertIn("push failed for 1 of 2 services: ping", result.stderr.splitlines()[-1])
        self.assertEqual(self.registry.tags("refused/ping"), [])
        with self.assertRaises(urllib.error.HTTPError) as missing:
            self.registry.get(f"/v2/refused/ping/manifests/{self.digest(self.ping)}")
        missing.exception.close()
        self.assertEqual(missing.exception.code, 404)
        self.assert_pushed("refused/route-guide", self.route_guide)
        self.assertEqual(self.registry.tags("refused/route-guide"), ["latest"])
        self.assertEqual(
            sorted(p.name for p in workdir.iterdir()), ["ping.yaml", "route-guide.yaml"]
        )
        self.assertEqual(stale.read_text(), "stale: true\n")
        self.assertLen(result.blobs("uploaded", "ping"), 4)
        self.assertEqual(result.blobs("mounted", "route-guide"), digests(self.route_guide)[1:3])

    def test_second_service_failing_on_a_blob_is_left_untagged(self) -> None:
        # Every upload to route-guide's repository is refused: ping is pushed, route-guide has
        # no manifest, no tag, no YAML.
        def refuse_route_guide_uploads(number: int, method: str, path: str) -> str | None:
            refused = path.startswith("/v2/second/route-guide/blobs/uploads/")
            return "403" if refused else None

        proxy = FlakyProxy(self.registry.host, refuse_route_guide_uploads)
        self.addCleanup(proxy.close)
        prefix = f"{proxy.host}/second"
        workdir = self.workdir()
        result = self.push(PUSH_ALL, prefix, workdir)

        self.assertEqual(result.returncode, 1, result.stderr)
        summary = result.summary()
        self.assertEqual(
            summary["ping"], f"pushed {prefix}/ping@{self.digest(self.ping)} tags latest"
        )
        self.assertEqual(
            summary["route-guide"],
            f"FAILED: registry {proxy.host} denied POST /v2/second/route-guide/blobs/uploads/ "
            "to anonymous access: HTTP 403: DENIED requested access to the resource is denied",
        )
        self.assertLen(result.stdout.splitlines(), 2)
        self.assertEqual(self.registry.tags("second/ping"), ["latest"])
        self.assertEqual(self.registry.tags("second/route-guide"), [])
        self.assertEqual(sorted(p.name for p in workdir.iterdir()), ["ping.yaml"])

    def test_one_service_push(self) -> None:
        prefix = f"{self.registry.host}/single"
        workdir = self.workdir()
        result = self.push(PUSH_PING, prefix, workdir)
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertEqual(
            result.stdout, f"ping: pushed {prefix}/ping@{self.digest(self.ping)} tags latest\n"
        )
        self.assertEqual([p.name for p in workdir.iterdir()], ["ping.yaml"])
        self.assertEqual(self.registry.tags("single/ping"), ["latest"])
        self.assertEqual(self.registry.tags("single/route-guide"), [])

    def test_manifest_dir_and_extra_tags(self) -> None:
        prefix = f"{self.registry.host}/elsewhere"
        out = self.tmp / "manifests" / "out"
        result = self.push(
            PUSH_ALL, prefix, self.workdir(), "--manifest_dir", str(out), "--tag", "v1"
        )
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertEqual(sorted(p.name for p in out.iterdir()), ["ping.yaml", "route-guide.yaml"])
        self.assertEqual(self.registry.tags("elsewhere/ping"), ["latest", "v1"])
        self.assertEqual(self.registry.tags("elsewhere/route-guide"), ["latest", "v1"])
        self.assertIn(" tags v1 latest", result.summary()["ping"])  # `latest` moves last

    def test_stamped_tags_come_from_the_workspace_status(self) -> None:
        values = stamp_values()
        expected = sorted(
            ["latest", values["STABLE_RELEASE"], f"git-{values['STABLE_GIT_COMMIT']}"]
        )
        prefix = f"{self.registry.host}/stamped"
        result = self.push(PUSH_STAMPED, prefix, self.workdir())
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertEqual(self.registry.tags("stamped/ping"), expected)

        unstamped = self.push(PUSH_ALL, f"{self.registry.host}/unstamped", self.workdir())
        self.assertEqual(unstamped.returncode, 0, unstamped.stderr)
        self.assertIn("stamped tags", unstamped.stderr)  # skipped without --stamp, and says so
        self.assertEqual(self.registry.tags("unstamped/ping"), ["latest"])

    def test_refused_tag_summary_says_which_tags_moved(self) -> None:
        # Tags go most specific first, `latest` last. The registry refuses the commit tag: the
        # release tag has moved, the commit tag and `latest` have not, and the summary says so.
        values = stamp_values()
        release, commit = values["STABLE_RELEASE"], f"git-{values['STABLE_GIT_COMMIT']}"

        def refuse_commit_tag(number: int, method: str, path: str) -> str | None:
            refused = method == "PUT" and path == f"/v2/tagfail/ping/manifests/{commit}"
            return "403" if refused else None

        proxy = FlakyProxy(self.registry.host, refuse_commit_tag)
        self.addCleanup(proxy.close)
        workdir = self.workdir()
        result = self.push(PUSH_STAMPED, f"{proxy.host}/tagfail", workdir)
        self.assertEqual(result.returncode, 1, result.stderr)
        self.assertLen(proxy.injected, 1, proxy.injected)
        self.assertEqual(
            result.summary()["ping"],
            f"FAILED: tag {commit} refused: registry {proxy.host} denied PUT "
            f"/v2/tagfail/ping/manifests/{commit} to anonymous access: HTTP 403: DENIED "
            f"requested access to the resource is denied; tags moved: {release}; "
            f"tags not moved: {commit} latest",
        )
        self.assertEqual(self.registry.tags("tagfail/ping"), [release])
        self.assertEqual(list(workdir.iterdir()), [])

    def test_service_renamed_by_its_environment_goes_to_its_own_repository(self) -> None:
        # As --environment=staging builds ping, its manifest names the service ping-staging:
        # under --repository PREFIX it goes to PREFIX/ping-staging, never to production's
        # PREFIX/ping (whose `latest` it would move). Its YAML is still ping.yaml; the summary
        # and the progress lines name both.
        spec = self.write_spec(
            [("ping", self.ping.root, renamed(self.built["ping"], "ping-staging"))]
        )
        prefix = f"{self.registry.host}/renamed"
        workdir = self.workdir()
        result = self.push(PUSH_ALL, prefix, workdir, "--spec", str(spec))
        self.assertEqual(result.returncode, 0, result.stderr)
        reference = f"{prefix}/ping-staging@{self.digest(self.ping)}"
        self.assertEqual(result.stdout, f"ping (ping-staging): pushed {reference} tags latest\n")
        self.assertCountEqual(result.blobs("uploaded", "ping"), digests(self.ping))
        self.assert_pushed("renamed/ping-staging", self.ping)
        self.assertEqual(self.registry.tags("renamed/ping"), [])
        self.assertEqual([p.name for p in workdir.iterdir()], ["ping.yaml"])
        resolved = yaml.safe_load((workdir / "ping.yaml").read_text())
        self.assertEqual(resolved["metadata"]["name"], "ping-staging")
        image = resolved["spec"]["template"]["spec"]["containers"][0]["image"]
        self.assertEqual(image, reference)

        # Two services an environment would send to one repository: refused before sending.
        clash = self.write_spec(
            [
                ("ping", self.ping.root, renamed(self.built["ping"], "route-guide")),
                ("route-guide", self.route_guide.root, self.built["route-guide"]),
            ]
        )
        workdir = self.workdir()
        result = self.push(PUSH_ALL, f"{self.registry.host}/clash", workdir, "--spec", str(clash))
        self.assertEqual(result.returncode, 2, result.stderr)
        self.assertIn(
            f"services ping and route-guide would both go to {self.registry.host}/clash/"
            "route-guide",
            result.stderr,
        )
        self.assertEqual(result.stdout, "")
        self.assertEqual(list(workdir.iterdir()), [])
        self.assertEqual(self.registry.tags("clash/route-guide"), [])

    def test_unexpected_error_fails_one_service_the_next_still_pushed(self) -> None:
        # Something no handler foresaw (here a blob of the first service's image vanishes once
        # the push has started) fails that service alone: its traceback on stderr, an
        # `internal error` summary line, exit 1; the next service is pushed.
        broken = Path(tempfile.mkdtemp(dir=self.tmp)).resolve() / "image"
        (broken / "blobs" / "sha256").mkdir(parents=True)
        (broken / "index.json").write_bytes((self.route_guide.root / "index.json").read_bytes())
        for blob in (self.route_guide.root / "blobs" / "sha256").iterdir():
            (broken / "blobs" / "sha256" / blob.name).symlink_to(blob.resolve())
        config = broken / "blobs" / "sha256" / digests(self.route_guide)[0].partition(":")[2]
        spec = self.write_spec(
            [
                ("broken", broken, renamed(self.built["route-guide"], "broken")),
                ("ping", self.ping.root, self.built["ping"]),
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
        self.assertEqual(list(summary), ["broken", "ping"], result.stdout)
        self.assertEqual(
            summary["broken"],
            "FAILED: internal error: FileNotFoundError: [Errno 2] No such file or directory: "
            f"'{config}'",
        )
        self.assertIn("Traceback (most recent call last)", result.stderr)
        self.assertEqual(
            summary["ping"], f"pushed {prefix}/ping@{self.digest(self.ping)} tags latest"
        )
        self.assert_pushed("internal/ping", self.ping)
        self.assertEqual(self.registry.tags("internal/broken"), [])
        self.assertEqual([p.name for p in workdir.iterdir()], ["ping.yaml"])
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
        for name in ("bad/ping", "bad/route-guide"):
            self.assertEqual(self.registry.tags(name), [])


if __name__ == "__main__":
    absltest.main()
