"""Image layers are reproducible and independent: the base layer rebuilt here, at another time
and place, has the digest Bazel's build gave it; and an image whose server differs by one line
shares every layer but the application's with //deploy:image."""

from __future__ import annotations

import os
from pathlib import Path

from absl.testing import absltest

from bazel.tools import deb_layer, layer_tar
from tests.deploy.oci_layout import Layout, image_outputs


class ReproducibleTest(absltest.TestCase):
    def test_base_layer_rebuilds_to_same_digest(self) -> None:
        debs = [Path(p).read_bytes() for p in os.environ["DEBS"].split()]
        os.umask(0o077)  # a different umask must not matter either
        rebuilt = layer_tar.build(deb_layer.entries(list(reversed(debs))))
        built = Layout(image_outputs("IMAGE")[0]).manifest["layers"][0]["digest"]
        self.assertEqual(rebuilt.digest, built)
        self.assertEqual(layer_tar.build(deb_layer.entries(debs)).digest, built)

    def test_one_line_server_change_changes_only_the_app_layer(self) -> None:
        image = Layout(image_outputs("IMAGE")[0]).manifest["layers"]
        variant = Layout(image_outputs("VARIANT_IMAGE")[0]).manifest["layers"]
        digests = [layer["digest"] for layer in image]
        variant_digests = [layer["digest"] for layer in variant]
        self.assertEqual(digests[:2], variant_digests[:2])
        self.assertNotEqual(digests[2], variant_digests[2])


if __name__ == "__main__":
    absltest.main()
