"""What the tests of `bazel run //deploy:push` (every Cloud Run service of the repository) share:
a real registry (Debian's docker-registry on loopback) started once per test class, the images
and built manifests of the services, push specs written as cloud_run_push writes them, and the
assertions on what landed in the registry. push_services_test checks the pushes that succeed,
push_services_failures_test those that fail or are refused; both run the same targets. The
services are test-only (the kit's test service `kittest` and `echo`, push_of_two_services in
tests/deploy/BUILD.bazel): what `//deploy:push` does with its services, without a sample.
"""

from __future__ import annotations

import copy
import json
import os
import re
import tempfile
from pathlib import Path

import yaml
from absl.testing import absltest

from bazel.tools.oci_layout import Layout, image_outputs
from tests.deploy.pushing import PushResult, run_push
from tests.deploy.registry_server import RegistryServer

PUSH_ALL = os.environ["PUSH_ALL"]
PUSH_KITTEST = os.environ["PUSH_KITTEST"]
PUSH_AFTER_A_CHANGE = os.environ["PUSH_AFTER_A_CHANGE"]
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


class ServicesPushTestCase(absltest.TestCase):
    """A registry for the class, the services' images and manifests, and helpers."""

    @classmethod
    def setUpClass(cls) -> None:
        cls.tmp = Path(tempfile.mkdtemp(dir=os.environ.get("TEST_TMPDIR")))
        cls.registry = RegistryServer(cls.tmp / "registry").start()
        cls.addClassCleanup(cls.registry.stop)
        cls.kittest = Layout(image_outputs("IMAGE")[0])
        cls.echo = Layout(image_outputs("ECHO_IMAGE")[0])
        cls.kittest_variant = Layout(image_outputs("VARIANT_IMAGE")[0])
        cls.built = {
            "kittest": yaml.safe_load(Path(os.environ["KITTEST_MANIFEST"]).read_text()),
            "echo": yaml.safe_load(Path(os.environ["ECHO_MANIFEST"]).read_text()),
        }

    def workdir(self) -> Path:
        """A directory to run the push from, as a user's shell would be."""
        return Path(tempfile.mkdtemp(dir=self.tmp))

    def push(self, launcher: str, prefix: str, workdir: Path, *args: str) -> PushResult:
        return run_push(launcher, "--repository", prefix, *args, cwd=workdir)

    def write_spec(
        self, services: list[tuple[str, Path, dict]], sboms: dict[str, Path] | None = None
    ) -> Path:
        """A push spec as cloud_run_push writes it, for (spec name, image layout, manifest)
        each, tagged `latest`, with the SBOM `sboms` gives it if any: given to a push target
        with `--spec`, it replaces the target's."""
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
                    "sbom": str((sboms or {}).get(name, "")) or None,
                    "tags": ["latest"],
                    "stamped_tags": [],
                }
            )
        spec = directory / "push.json"
        spec.write_text(json.dumps({"repository": "", "services": entries, "status_files": []}))
        return spec

    def digest(self, layout: Layout) -> str:
        return layout.manifest_descriptor["digest"]

    def referrers_tag(self, layout: Layout) -> str:
        """The tag of the image's referrers index, which its SBOM's push writes."""
        return self.digest(layout).replace(":", "-")

    def assert_summary(self, line: str, pushed: str) -> None:
        """`line` is `pushed` (`pushed REPO@DIGEST tags ...`) and the SBOM it attached."""
        self.assertRegex(line, "^" + re.escape(pushed) + " sbom sha256:[0-9a-f]{64}$")

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
