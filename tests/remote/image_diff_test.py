"""//tools/remote:image_diff, as CI runs it on a local and a remote build of one image: the same
image exits 0 silently; a difference exits 1 naming the first differing layer and tar entry
(the mode of one file, as the remote workers once packed it) or the config; a directory that is
no layout exits 2 with one line."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import tempfile
from pathlib import Path

from absl.testing import absltest

from bazel.tools import layer_tar
from bazel.tools.layer_tar import Entry

BASE = [Entry("usr/bin/tool", data=b"#!/bin/sh\n", mode=0o755)]
APP = [
    Entry("app/main.py", data=b"print('main')\n"),
    Entry("app/util.py", data=b"print('util')\n"),
]


def _blob(root: Path, data: bytes) -> dict:
    digest = hashlib.sha256(data).hexdigest()
    (root / "blobs" / "sha256" / digest).write_bytes(data)
    return {"digest": f"sha256:{digest}", "size": len(data)}


def _layout(layers: list[list[Entry]], env: list[str], layer_digest: str | None = None) -> Path:
    """An OCI layout of one image with `layers` and config Env `env`; with `layer_digest`, the
    manifest names its first layer by that digest (a hostile layout's)."""
    root = Path(tempfile.mkdtemp(dir=absltest.TEST_TMPDIR.value))
    (root / "blobs" / "sha256").mkdir(parents=True)
    built = [layer_tar.build(entries) for entries in layers]
    config = {
        "architecture": "amd64",
        "os": "linux",
        "config": {"Env": env},
        "rootfs": {"type": "layers", "diff_ids": [layer.diff_id for layer in built]},
    }
    manifest = {
        "schemaVersion": 2,
        "config": _blob(root, json.dumps(config, sort_keys=True).encode()),
        "layers": [_blob(root, layer.gzip) for layer in built],
    }
    if layer_digest:
        manifest["layers"][0]["digest"] = layer_digest
    index = {"schemaVersion": 2, "manifests": [_blob(root, json.dumps(manifest).encode())]}
    (root / "index.json").write_text(json.dumps(index))
    (root / "oci-layout").write_text('{"imageLayoutVersion": "1.0.0"}')
    return root


def _diff(a: Path, b: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [os.environ["IMAGE_DIFF"], str(a), str(b)], capture_output=True, text=True, check=False
    )


class ImageDiffTest(absltest.TestCase):
    def test_the_same_image(self) -> None:
        result = _diff(_layout([BASE, APP], ["A=1"]), _layout([BASE, APP], ["A=1"]))
        self.assertEqual((result.returncode, result.stdout, result.stderr), (0, "", ""))

    def test_a_mode_in_the_second_layer(self) -> None:
        executable = [APP[0], Entry("app/util.py", data=APP[1].data, mode=0o755)]
        result = _diff(_layout([BASE, APP], ["A=1"]), _layout([BASE, executable], ["A=1"]))
        self.assertEqual(result.returncode, 1, result.stderr)
        lines = result.stdout.splitlines()
        self.assertLen(lines, 3)
        self.assertStartsWith(lines[0], "images differ: sha256:")
        self.assertStartsWith(lines[1], "first differing layer: 2 of 2: sha256:")
        self.assertEqual(
            lines[2],
            "first differing entry: app/util.py: type 0 mode 0644 owner 0:0 mtime 0 size 14 "
            "vs type 0 mode 0755 owner 0:0 mtime 0 size 14",
        )

    def test_contents(self) -> None:
        changed = [APP[0], Entry("app/util.py", data=b"print('UTIL')\n")]
        result = _diff(_layout([BASE, APP], ["A=1"]), _layout([BASE, changed], ["A=1"]))
        self.assertEqual(result.returncode, 1, result.stderr)
        self.assertEqual(
            result.stdout.splitlines()[-1], "first differing entry: app/util.py: contents differ"
        )

    def test_only_the_config(self) -> None:
        result = _diff(_layout([BASE, APP], ["A=1"]), _layout([BASE, APP], ["A=2"]))
        self.assertEqual(result.returncode, 1, result.stderr)
        self.assertEqual(
            result.stdout.splitlines()[-1], "same layers; the configs differ in config"
        )

    def test_not_a_layout(self) -> None:
        empty = Path(tempfile.mkdtemp(dir=absltest.TEST_TMPDIR.value))
        result = _diff(_layout([BASE], []), empty)
        self.assertEqual(result.returncode, 2)
        self.assertEqual(result.stdout, "")
        self.assertLen(result.stderr.splitlines(), 1)
        self.assertIn(f"image_diff: {empty} is not an OCI image layout", result.stderr)

    def test_a_layer_digest_that_leaves_the_layout_is_refused(self) -> None:
        # The blob path a digest names stays in blobs/sha256 (bazel/tools/oci.py).
        outside = "sha256:../../../../../../etc/passwd"
        result = _diff(_layout([BASE], []), _layout([APP], [], layer_digest=outside))
        self.assertEqual((result.returncode, result.stdout), (2, ""), result.stderr)
        self.assertLen(result.stderr.splitlines(), 1)
        self.assertIn("is not sha256", result.stderr)


if __name__ == "__main__":
    absltest.main()
