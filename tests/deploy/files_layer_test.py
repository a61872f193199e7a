"""files_layer packs the same layer whatever permission bits its inputs arrive with.

Bazel makes its local outputs read-only and executable (0555) while sources keep the checkout's
bits, and a remote executor stages every input with bits of its own: a layer whose modes came
from the inputs' bits differed between a local and a remote build of the same commit
(docs/remote-builds.md). Here the real tool runs on one set of files copied with each of those
bits, and every run must give the same bytes, with each file's mode from what it is: 0755 for a
script with `#!` or an ELF program, 0644 for modules, data and shared libraries."""

from __future__ import annotations

import gzip
import io
import json
import os
import shutil
import subprocess
import sys
import sysconfig
import tarfile
import tempfile
from pathlib import Path

from absl.testing import absltest

# What each file's mode in the layer must be, by destination.
EXPECTED_MODES = {
    "app/main.py": 0o644,
    "app/data.json": 0o644,
    "app/bin/tool": 0o755,
    "app/bin/python": 0o755,
    "app/lib/extension.so": 0o644,
}

# The bits a file reached the action with: a checkout's, Bazel's outputs', a stager's.
INPUT_BITS = (0o644, 0o755, 0o555, 0o600, 0o700)


def _shared_library() -> Path:
    """One of the test's Python's extension modules: a real shared library (no loader)."""
    dynload = Path(sysconfig.get_path("platstdlib")) / "lib-dynload"
    found = sorted(dynload.glob("*.so"))
    if not found:
        raise AssertionError(f"no extension module (*.so) in {dynload} to use as a library")
    return found[0]


def _sources(directory: Path, bits: int) -> dict[str, str]:
    """The test's files copied under `directory`, each chmod-ed to `bits`: the manifest."""
    contents = {
        "app/main.py": b"import sys\n\nprint(sys.argv)\n",
        "app/data.json": b'{"key": "value"}\n',
        "app/bin/tool": b"#!/usr/bin/env python3\nprint('tool')\n",
        "app/bin/python": Path(os.path.realpath(sys.executable)).read_bytes(),
        "app/lib/extension.so": _shared_library().read_bytes(),
    }
    manifest = {}
    for index, (destination, data) in enumerate(sorted(contents.items())):
        source = directory / str(index)
        source.write_bytes(data)
        source.chmod(bits)
        manifest[destination] = str(source)
    return manifest


class FilesLayerTest(absltest.TestCase):
    def _layer(self, bits: int) -> tuple[bytes, str]:
        """The tool's gzip blob and digest for the files given with `bits`."""
        directory = Path(tempfile.mkdtemp(dir=absltest.TEST_TMPDIR.value))
        self.addCleanup(shutil.rmtree, directory)
        manifest = directory / "manifest.json"
        manifest.write_text(json.dumps(_sources(directory, bits)))
        out = directory / "layer.tar.gz"
        tool = subprocess.run(
            [os.environ["FILES_LAYER"], str(out), str(manifest)],
            capture_output=True,
            text=True,
            check=False,
        )
        self.assertEqual(tool.returncode, 0, tool.stderr)
        return out.read_bytes(), Path(f"{out}.digest").read_text()

    def test_the_same_bytes_whatever_the_inputs_bits(self) -> None:
        layers = {bits: self._layer(bits) for bits in INPUT_BITS}
        reference_blob, reference_digest = layers[INPUT_BITS[0]]
        for bits, (blob, digest) in layers.items():
            with self.subTest(bits=oct(bits)):
                self.assertEqual(digest, reference_digest)
                self.assertEqual(blob, reference_blob)

    def test_modes_from_what_each_file_is(self) -> None:
        for bits in INPUT_BITS:
            blob, _ = self._layer(bits)
            with tarfile.open(fileobj=io.BytesIO(gzip.decompress(blob))) as tar:
                modes = {m.name: m.mode for m in tar.getmembers() if m.isfile()}
            with self.subTest(bits=oct(bits)):
                self.assertEqual(
                    {name: oct(mode) for name, mode in modes.items()},
                    {name: oct(mode) for name, mode in EXPECTED_MODES.items()},
                )


if __name__ == "__main__":
    absltest.main()
