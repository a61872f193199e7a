"""./bazelw picks the Bazel to run: a new enough `bazel` or `bazelisk` on PATH, else (as root) a
provisioned root, else a clear message. Fake Bazels on PATH make each branch observable."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import tempfile
from pathlib import Path

from absl.testing import absltest

WANTED = Path(".bazelversion").read_text(encoding="utf-8").strip()


class BazelwTest(absltest.TestCase):
    def setUp(self) -> None:
        super().setUp()
        # A workspace of its own: the launcher reads .bazelversion beside itself.
        self.workspace = Path(tempfile.mkdtemp(dir=os.environ.get("TEST_TMPDIR")))
        shutil.copy("bazelw", self.workspace / "bazelw")
        shutil.copy(".bazelversion", self.workspace / ".bazelversion")
        self.bin = self.workspace / "fakebin"
        self.bin.mkdir()
        # The tools the launcher needs, and nothing named bazel from the real PATH.
        for tool in ("awk", "sort", "head", "tr", "dirname", "timeout", "cat"):
            (self.bin / tool).symlink_to(shutil.which(tool))

    def fake(self, name: str, script: str) -> None:
        path = self.bin / name
        path.write_text("#!/bin/sh\n" + script, encoding="utf-8")
        path.chmod(path.stat().st_mode | stat.S_IEXEC)

    def fake_bazel(self, name: str, version: str, exit_code: int = 0) -> None:
        self.fake(
            name,
            f'if [ "$1" = --version ]; then echo "bazel {version}"; exit 0; fi\n'
            f'echo "{name} ran: $*"; exit {exit_code}\n',
        )

    def bazelw(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["/bin/bash", str(self.workspace / "bazelw"), *args],
            env={"PATH": str(self.bin), "HOME": str(self.workspace)},
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )

    def test_runs_new_enough_bazel_with_args_and_exit_code(self) -> None:
        self.fake_bazel("bazel", WANTED, exit_code=7)
        result = self.bazelw("test", "//...")
        self.assertEqual(result.stdout.strip(), "bazel ran: test //...")
        self.assertEqual(result.returncode, 7)

    def test_skips_old_bazel_for_new_enough_bazelisk(self) -> None:
        self.fake_bazel("bazel", "6.5.0")
        self.fake_bazel("bazelisk", "8.0.1")
        result = self.bazelw("build", "//python/server")
        self.assertEqual(result.stdout.strip(), "bazelisk ran: build //python/server")
        self.assertEqual(result.returncode, 0)

    def test_not_root_without_bazel_says_how_to_get_it(self) -> None:
        self.fake_bazel("bazel", "7.6.0")
        self.fake("id", "echo 1000\n")
        result = self.bazelw("build", "//...")
        self.assertEqual(result.returncode, 2)
        self.assertIn(f"no Bazel >= {WANTED} on PATH and not root", result.stderr)
        self.assertIn("Bazelisk", result.stderr)
        self.assertEqual(result.stdout, "")


if __name__ == "__main__":
    absltest.main()
