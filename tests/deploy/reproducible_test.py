"""Image layers are reproducible and independent: the base layer rebuilt here, at another time
and place (its bytecode compiled again, in another directory), has the digest Bazel's build
gave it; and an image whose server differs by one line (the kit's test service's, with one line
added to its main.py) shares every layer but the application's with the image it came from."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from absl.testing import absltest

from bazel.tools import bytecode, deb_layer, layer_tar
from bazel.tools.oci_layout import Layout, image_outputs

PYTHON = "/usr/bin/python3.13"  # //deploy:base_layer's `python`


class ReproducibleTest(absltest.TestCase):
    def test_base_layer_rebuilds_to_same_digest(self) -> None:
        debs = [Path(p).read_bytes() for p in os.environ["DEBS"].split()]
        os.umask(0o077)  # a different umask must not matter either
        with tempfile.TemporaryDirectory(dir=os.environ.get("TEST_TMPDIR")) as directory:
            root, compiled = Path(directory, "elsewhere/root"), Path(directory, "elsewhere/pyc")
            deb_layer.write_python_root(list(reversed(debs)), PYTHON, root)
            argv = ["bytecode.py", "--python-root", str(root), "--out", str(compiled)]
            self.assertEqual(bytecode.main([*argv, "--root-sources"]), 0)
            entries = deb_layer.entries(debs) + layer_tar.tree_entries(compiled)
            rebuilt = layer_tar.build(entries)
        built = Layout(image_outputs("IMAGE")[0]).manifest["layers"][0]["digest"]
        self.assertEqual(rebuilt.digest, built)

    def test_one_line_server_change_changes_only_the_app_layer(self) -> None:
        image = Layout(image_outputs("IMAGE")[0]).manifest["layers"]
        variant = Layout(image_outputs("VARIANT_IMAGE")[0]).manifest["layers"]
        digests = [layer["digest"] for layer in image]
        variant_digests = [layer["digest"] for layer in variant]
        self.assertEqual(digests[:2], variant_digests[:2])
        self.assertNotEqual(digests[2], variant_digests[2])


if __name__ == "__main__":
    absltest.main()
