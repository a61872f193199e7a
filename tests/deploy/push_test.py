"""oci_push, one image to one repository, against a real registry (Debian's docker-registry on
loopback): what goes up comes back byte for byte, a second push uploads nothing, a push after a
one-line server change uploads only the application layer (and the config that names it),
stamped tags, and bad input refused before anything is sent. The push of Cloud Run services
(several images, their manifests) is push_services_test."""

from __future__ import annotations

import os
import tempfile
import urllib.error
from pathlib import Path

from absl.testing import absltest

from bazel.tools.oci_layout import Layout, image_outputs
from tests.deploy.pushing import PushResult, run_push
from tests.deploy.registry_server import RegistryServer

PUSH = os.environ["PUSH"]
PUSH_VARIANT = os.environ["PUSH_VARIANT"]
PUSH_STAMPED = os.environ["PUSH_STAMPED"]


class PushTest(absltest.TestCase):
    @classmethod
    def setUpClass(cls) -> None:
        cls.tmp = Path(tempfile.mkdtemp(dir=os.environ.get("TEST_TMPDIR")))
        cls.registry = RegistryServer(cls.tmp / "registry").start()
        cls.addClassCleanup(cls.registry.stop)
        layout_dir, digest_file = image_outputs("IMAGE")
        cls.layout = Layout(layout_dir)
        cls.digest = digest_file.read_text().strip()

    def push(self, repository: str, *args: str, launcher: str = PUSH) -> PushResult:
        result = run_push(launcher, "--repository", repository, *args)
        self.assertEqual(result.returncode, 0, result.stderr)
        return result

    def test_pushed_image_reads_back_byte_for_byte(self) -> None:
        repository = f"{self.registry.host}/kit/round-trip"
        workdir = Path(tempfile.mkdtemp(dir=self.tmp))
        result = run_push(PUSH, "--repository", repository, "--chunk_size_mib", "4", cwd=workdir)
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertEqual(result.stdout.strip(), f"{repository}@{self.digest}")
        self.assertRegex(result.stderr, r"uploaded sha256:\w+ \d+ bytes in [2-9] chunks")
        self.assertRegex(result.stderr, r"uploaded sha256:\w+ \d+ bytes in one request")

        name = "kit/round-trip"
        manifest, headers = self.registry.get(f"/v2/{name}/manifests/{self.digest}")
        self.assertEqual(manifest, self.layout.blob(self.layout.manifest_descriptor))
        self.assertEqual(headers["Docker-Content-Digest"], self.digest)
        descriptors = [self.layout.manifest["config"], *self.layout.manifest["layers"]]
        for descriptor in descriptors:
            blob, _ = self.registry.get(f"/v2/{name}/blobs/{descriptor['digest']}")
            self.assertEqual(blob, self.layout.blob(descriptor), descriptor["digest"])
        self.assertEqual(self.registry.tags(name), ["latest"])
        self.assertIn("blobs: 4 uploaded, 0 mounted, 0 already there", result.stderr)
        self.assertEqual(list(workdir.iterdir()), [], "an image push writes no manifest")

    def test_second_push_uploads_no_blob(self) -> None:
        repository = f"{self.registry.host}/kit/twice"
        first = self.push(repository)
        self.assertLen(first.blobs("uploaded"), 4)
        second = self.push(repository)
        self.assertEqual(second.blobs("uploaded"), [])
        self.assertCountEqual(second.blobs("skipped"), first.blobs("uploaded"))
        self.assertIn("blobs: 0 uploaded, 0 mounted, 4 already there", second.stderr)

    def test_one_line_change_uploads_only_the_app_layer(self) -> None:
        repository = f"{self.registry.host}/kit/edited"
        self.push(repository)
        variant = self.push(repository, launcher=PUSH_VARIANT)
        variant_layout = Layout(image_outputs("VARIANT_IMAGE")[0])
        self.assertCountEqual(
            variant.blobs("uploaded"),
            [
                variant_layout.manifest["config"]["digest"],
                variant_layout.manifest["layers"][-1]["digest"],
            ],
        )
        self.assertCountEqual(
            variant.blobs("skipped"), [d["digest"] for d in self.layout.manifest["layers"][:-1]]
        )

    def test_stamped_tags_come_from_the_workspace_status(self) -> None:
        status = Path(os.environ["RUNFILES_DIR"], "_main", "stable-status.txt").read_text()
        values = dict(line.partition(" ")[::2] for line in status.splitlines())
        expected = sorted([values["STABLE_RELEASE"], f"git-{values['STABLE_GIT_COMMIT']}"])
        self.assertRegex(expected[-1], r"^git-[0-9a-f]{40}$")

        repository = f"{self.registry.host}/kit/stamped"
        result = self.push(repository, launcher=PUSH_STAMPED)
        self.assertEqual(self.registry.tags("kit/stamped"), expected)
        for tag in expected:
            self.assertIn(f"tagged {repository}:{tag}", result.stderr)

        unknown = run_push(
            PUSH_STAMPED, "--repository", repository, "--stamped_tag", "{NO_SUCH_KEY}"
        )
        self.assertEqual(unknown.returncode, 2)
        self.assertIn("the workspace status has no NO_SUCH_KEY", unknown.stderr)

    def test_bad_input_pushes_nothing(self) -> None:
        for args, message in [
            (["--repository", "no-registry-host"], "must start with the registry host"),
            (["--repository", f"{self.registry.host}/Upper/Case"], "not a valid OCI repository"),
            (
                ["--repository", f"{self.registry.host}/kit/bad", "--tag", "bad:tag"],
                "valid OCI tag",
            ),
            (
                ["--repository", f"{self.registry.host}/kit/bad", "--chunk_size_mib", "0"],
                "must be positive",
            ),
        ]:
            result = run_push(PUSH, *args)
            self.assertEqual(result.returncode, 2, result.stderr)
            self.assertIn(message, result.stderr)
            self.assertEqual(len(result.stderr.strip().splitlines()), 1, result.stderr)
        with self.assertRaises(urllib.error.HTTPError) as missing:
            self.registry.get("/v2/kit/bad/tags/list")
        missing.exception.close()
        self.assertEqual(missing.exception.code, 404)


if __name__ == "__main__":
    absltest.main()
