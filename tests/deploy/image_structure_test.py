"""//deploy:ping_image as a registry and a runtime read it: every reference resolves and
matches; //deploy:route_guide_image is the same base layers under its own app layer."""

from __future__ import annotations

import hashlib
import io
import tarfile

from absl.testing import absltest

from tests.deploy.oci_layout import Layout, image_outputs

SIZE_BUDGET_BYTES = 90 * 1000 * 1000


class ImageStructureTest(absltest.TestCase):
    @classmethod
    def setUpClass(cls) -> None:
        cls.dir = image_outputs("IMAGE")[0]
        cls.layout = Layout(cls.dir)

    def test_layout_and_media_types(self) -> None:
        self.assertEqual((self.dir / "oci-layout").read_text(), '{"imageLayoutVersion":"1.0.0"}')
        self.assertEqual(self.layout.index["mediaType"], "application/vnd.oci.image.index.v1+json")
        self.assertEqual(
            self.layout.manifest_descriptor["platform"], {"architecture": "amd64", "os": "linux"}
        )
        self.assertEqual(
            self.layout.manifest["mediaType"], "application/vnd.oci.image.manifest.v1+json"
        )
        self.assertEqual(
            self.layout.manifest["config"]["mediaType"], "application/vnd.oci.image.config.v1+json"
        )
        for layer in self.layout.manifest["layers"]:
            self.assertEqual(layer["mediaType"], "application/vnd.oci.image.layer.v1.tar+gzip")

    def test_digest_file_names_the_manifest(self) -> None:
        digest = image_outputs("IMAGE")[1].read_text()
        self.assertEqual(digest, self.layout.manifest_descriptor["digest"])
        self.assertRegex(digest, r"^sha256:[0-9a-f]{64}$")

    def test_every_blob_matches_digest_and_size_and_diff_ids(self) -> None:
        tars = self.layout.layer_tars()  # checks each layer blob's digest and size
        diff_ids = ["sha256:" + hashlib.sha256(t).hexdigest() for t in tars]
        self.assertEqual(self.layout.config["rootfs"], {"type": "layers", "diff_ids": diff_ids})
        self.assertLen(tars, 3, "base, third-party packages, application")

    def test_config_runs_server_as_nonroot(self) -> None:
        config = self.layout.config["config"]
        self.assertEqual(
            config["Entrypoint"], ["/usr/bin/python3.13", "/app/python/services/ping/main.py"]
        )
        self.assertEqual(config["User"], "65532:65532")
        env = dict(entry.split("=", 1) for entry in config["Env"])
        self.assertEqual(env["PYTHONUNBUFFERED"], "1")
        self.assertIn("/app/proto", env["PYTHONPATH"].split(":"))
        self.assertNotIn("PORT", env, "Cloud Run sets PORT")
        self.assertEqual(self.layout.config["architecture"], "amd64")
        self.assertNotIn("created", self.layout.config, "a timestamp would break reproducibility")

    def test_route_guide_image_shares_the_base_layers(self) -> None:
        route_guide = Layout(image_outputs("ROUTE_GUIDE_IMAGE")[0])
        layers = [layer["digest"] for layer in route_guide.manifest["layers"]]
        ping_layers = [layer["digest"] for layer in self.layout.manifest["layers"]]
        self.assertLen(layers, 3)
        self.assertEqual(layers[:2], ping_layers[:2])
        self.assertNotEqual(layers[2], ping_layers[2])
        config = route_guide.config["config"]
        self.assertEqual(
            config["Entrypoint"],
            ["/usr/bin/python3.13", "/app/python/services/route_guide/main.py"],
        )
        self.assertEqual(config["User"], "65532:65532")
        with tarfile.open(fileobj=io.BytesIO(route_guide.layer_tars()[2])) as tar:
            names = set(tar.getnames())
        self.assertIn("app/python/services/route_guide/features.json", names)
        self.assertFalse(any("python/services/ping" in n for n in names), "ping's code is not here")
        with tarfile.open(fileobj=io.BytesIO(self.layout.layer_tars()[2])) as tar:
            names = set(tar.getnames())
        self.assertFalse(any("services/route_guide" in n for n in names), "nor route_guide's there")

    def test_size_budget(self) -> None:
        sizes = [len(t) for t in self.layout.layer_tars()]
        self.assertLessEqual(sum(sizes), SIZE_BUDGET_BYTES, f"layer sizes {sizes}")

    def test_layers_are_deterministic_tars(self) -> None:
        for data in self.layout.layer_tars():
            with tarfile.open(fileobj=io.BytesIO(data)) as tar:
                names = tar.getnames()
                self.assertEqual(names, sorted(names))
                self.assertTrue(all(m.mtime == 0 for m in tar.getmembers()))
        for layer in self.layout.manifest["layers"]:
            header = self.layout.blob(layer)[:10]
            self.assertEqual(header[4:8], b"\0\0\0\0", "gzip header must carry no timestamp")

    def test_no_shell_or_package_manager(self) -> None:
        names = set()
        for data in self.layout.layer_tars():
            with tarfile.open(fileobj=io.BytesIO(data)) as tar:
                names.update(tar.getnames())
        for path in ("usr/bin/sh", "usr/bin/bash", "usr/bin/dash", "usr/bin/apt", "usr/bin/dpkg"):
            self.assertNotIn(path, names)
        for path in ("usr/bin/python3.13", "etc/ssl/certs/ca-certificates.crt", "etc/passwd"):
            self.assertIn(path, names)


if __name__ == "__main__":
    absltest.main()
