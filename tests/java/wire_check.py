"""What the samples' wire tests share: a scratch directory per test, and the sample's Java
`WireCheck` binary ($WIRE_CHECK) run on it, `write` to write its messages there, `read` to print
the fields of those Python wrote. The messages and their fields are each sample's own."""

from __future__ import annotations

import os
import subprocess
import tempfile
from pathlib import Path

from absl.testing import absltest


class WireCheckCase(absltest.TestCase):
    def setUp(self) -> None:
        super().setUp()
        self.directory = Path(tempfile.mkdtemp(dir=os.environ.get("TEST_TMPDIR")))

    def java(self, mode: str) -> str:
        """The Java binary's output, once it has exited 0."""
        result = subprocess.run(
            [os.environ["WIRE_CHECK"], mode, str(self.directory)],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        self.assertEqual(result.returncode, 0, result.stderr)
        return result.stdout
