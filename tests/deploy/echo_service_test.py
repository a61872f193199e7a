"""A Cloud Run service declared only in the test tree (tests/deploy/echo_service: a main.py on
the runtime and one cloud_run_service call) gets what //deploy's services get: an image on the
shared base layers with its own app layer, a tarball, a manifest with its settings, and a push
target that pushes it to the test registry and writes echo.yaml."""

from __future__ import annotations

import io
import os
import re
import tarfile
import tempfile
from pathlib import Path

import yaml
from absl.testing import absltest

from bazel.tools.oci_layout import Layout, image_outputs
from tests.deploy.pushing import run_push
from tests.deploy.registry_server import RegistryServer


class EchoServiceTest(absltest.TestCase):
    @classmethod
    def setUpClass(cls) -> None:
        cls.layout = Layout(image_outputs("ECHO_IMAGE")[0])
        cls.digest = cls.layout.manifest_descriptor["digest"]
        cls.manifest = yaml.safe_load(Path(os.environ["ECHO_MANIFEST"]).read_text())

    def test_image_is_the_shared_base_plus_its_own_app_layer(self) -> None:
        # Another service of the same base layers (the kit's test service).
        other = Layout(image_outputs("OTHER_IMAGE")[0])
        layers = [layer["digest"] for layer in self.layout.manifest["layers"]]
        other_layers = [layer["digest"] for layer in other.manifest["layers"]]
        self.assertLen(layers, 3)
        self.assertEqual(layers[:2], other_layers[:2])  # built once, shared
        self.assertNotEqual(layers[2], other_layers[2])

        config = self.layout.config["config"]
        self.assertEqual(
            config["Entrypoint"],
            ["/usr/bin/python3.13", "/app/tests/deploy/echo_service/main.py"],
        )
        env = dict(entry.split("=", 1) for entry in config["Env"])
        self.assertEqual(env["PYTHONUNBUFFERED"], "1")
        self.assertEqual(config["ExposedPorts"], {"8080/tcp": {}})
        self.assertEqual(config["WorkingDir"], "/app")
        with tarfile.open(fileobj=io.BytesIO(self.layout.layer_tars()[2])) as tar:
            names = set(tar.getnames())
        self.assertIn("app/tests/deploy/echo_service/main.py", names)
        self.assertIn("app/python/runtime/app.py", names)
        self.assertTrue(any(n.endswith("echo/v1/echo_pb2_grpc.py") for n in names), names)
        self.assertFalse(any("python/services/" in n for n in names), "no other service's code")

    def test_manifest_has_its_settings_and_names_the_image(self) -> None:
        self.assertEqual(self.manifest["metadata"]["name"], "echo")
        template = self.manifest["spec"]["template"]
        self.assertEqual(
            template["metadata"]["annotations"]["autoscaling.knative.dev/minScale"], "1"
        )
        (container,) = template["spec"]["containers"]
        self.assertEqual(
            container["image"], f"us-central1-docker.pkg.dev/kit-tests/echo-repo/echo@{self.digest}"
        )
        self.assertIn({"name": "ECHO_MODE", "value": "test"}, container["env"])
        self.assertEqual(Path(os.environ["ECHO_MANIFEST"]).name, "echo.yaml")

    def test_tarball_loads_as_the_service(self) -> None:
        with tarfile.open(os.environ["ECHO_TARBALL"]) as tar:
            manifest = yaml.safe_load(tar.extractfile("manifest.json"))  # JSON is YAML
        self.assertEqual(manifest[0]["RepoTags"], ["echo:latest"])

    def test_push_to_the_registry(self) -> None:
        tmp = Path(tempfile.mkdtemp(dir=os.environ.get("TEST_TMPDIR")))
        registry = RegistryServer(tmp / "registry").start()
        self.addCleanup(registry.stop)
        workdir = tmp / "work"
        workdir.mkdir()
        prefix = f"{registry.host}/tests"
        result = run_push(os.environ["ECHO_PUSH"], "--repository", prefix, cwd=workdir)
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertRegex(
            result.stdout,
            rf"^echo: pushed {re.escape(prefix)}/echo@{self.digest} tags latest "
            r"sbom sha256:[0-9a-f]{64}\n$",
        )
        self.assertLen(result.blobs("uploaded", "echo"), 4)
        # `latest`, and the referrers index that lists the image's SBOM.
        referrers_tag = self.digest.replace(":", "-")
        self.assertEqual(registry.tags("tests/echo"), ["latest", referrers_tag])
        manifest, _ = registry.get(f"/v2/tests/echo/manifests/{self.digest}")
        self.assertEqual(manifest, self.layout.blob(self.layout.manifest_descriptor))
        self.assertEqual([p.name for p in workdir.iterdir()], ["echo.yaml"])
        resolved = yaml.safe_load((workdir / "echo.yaml").read_text())
        image = resolved["spec"]["template"]["spec"]["containers"][0]["image"]
        self.assertEqual(image, f"{prefix}/echo@{self.digest}")


if __name__ == "__main__":
    absltest.main()
