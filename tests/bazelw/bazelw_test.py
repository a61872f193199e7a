"""./bazelw picks the Bazel to run: a `bazel` or `bazelisk` on PATH of .bazelversion's major and at
least it, else (as root) a provisioned root, else a clear message; each Bazel it passes over is
named with why. Fake Bazels on PATH make each branch observable. `--bazelw_clean` removes the
other checkouts' roots, except one a ./bazelw holds."""

from __future__ import annotations

import hashlib
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
        tools = ("awk", "sort", "head", "tr", "dirname", "timeout", "cat", "sha256sum", "cut")
        tools += ("find", "flock", "findmnt", "grep", "xargs", "rm", "readlink", "mkdir")
        for tool in tools:
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

    def bazelw(self, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["/bin/bash", str(self.workspace / "bazelw"), *args],
            env={"PATH": str(self.bin), "HOME": str(self.workspace), **env},
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

    def test_skips_old_bazel_for_newer_bazelisk_of_the_same_major(self) -> None:
        self.fake_bazel("bazel", "7.6.0")
        major, minor, _ = WANTED.split(".")
        newer = f"{major}.{int(minor) + 1}.0"
        self.fake_bazel("bazelisk", newer)
        result = self.bazelw("build", "//python/server")
        self.assertEqual(result.stdout.strip(), "bazelisk ran: build //python/server")
        self.assertEqual(result.returncode, 0)
        self.assertIn(
            f"not using {self.bin}/bazel (Bazel 7.6.0): older than {WANTED}", result.stderr
        )

    def test_refuses_a_newer_major_and_says_why(self) -> None:
        # Bazel 8 and later refuse protobuf 21.7's struct providers: never picked, even when
        # nothing else is there.
        major = int(WANTED.split(".")[0])
        self.fake_bazel("bazel", f"{major + 1}.0.1")
        self.fake_bazel("bazelisk", f"{major + 2}.1.0")
        self.fake("id", "echo 1000\n")
        result = self.bazelw("build", "//...")
        self.assertEqual(result.returncode, 2)
        self.assertEqual(result.stdout, "")
        lines = result.stderr.splitlines()
        self.assertEqual(
            lines[:2],
            [
                f"bazelw: not using {self.bin}/bazel (Bazel {major + 1}.0.1): this workspace "
                f"needs Bazel {major}.x (>= {WANTED})",
                f"bazelw: not using {self.bin}/bazelisk (Bazel {major + 2}.1.0): this workspace "
                f"needs Bazel {major}.x (>= {WANTED})",
            ],
        )
        self.assertIn(f"no Bazel {major}.x >= {WANTED} on PATH and not root", lines[2])

    def test_not_root_without_bazel_says_how_to_get_it(self) -> None:
        self.fake_bazel("bazel", "7.6.0")
        self.fake("id", "echo 1000\n")
        result = self.bazelw("build", "//...")
        self.assertEqual(result.returncode, 2)
        self.assertIn("no Bazel 7.x >= 7.7.1 on PATH and not root", result.stderr)
        self.assertIn("Bazelisk", result.stderr)
        self.assertEqual(result.stdout, "")

    def test_clean_removes_other_roots_but_not_one_in_use(self) -> None:
        # Roots are keyed by provision.sh: this checkout's stays, another checkout's goes,
        # unless a ./bazelw holds its lock (it is running there now).
        provision = self.workspace / "tools" / "bazelw" / "provision.sh"
        provision.parent.mkdir(parents=True)
        provision.write_text("# a provision script\n")
        key = hashlib.sha256(provision.read_bytes()).hexdigest()[:16]
        cache = self.workspace / "cache"
        ours, unused, busy = (cache / f"root-{k}" for k in (key, "a" * 16, "b" * 16))
        for root in (ours, unused, busy):
            (root / "usr" / "bin").mkdir(parents=True)
            root.with_name(root.name + ".used").touch()
        holder = subprocess.Popen(
            ["flock", "-s", str(busy) + ".lock", "sleep", "60"], stdout=subprocess.DEVNULL
        )
        self.addCleanup(holder.kill)
        for _ in range(100):  # until the holder has the lock
            probe = subprocess.run(["flock", "-n", "-x", str(busy) + ".lock", "true"], check=False)
            if probe.returncode != 0:
                break
        result = self.bazelw("--bazelw_clean", BAZELW_CACHE=str(cache))
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertTrue(ours.is_dir())
        self.assertFalse(unused.exists())
        self.assertFalse(unused.with_name(unused.name + ".used").exists())
        self.assertTrue(busy.is_dir())
        self.assertIn(f"removing {unused}", result.stderr)
        self.assertIn(f"keeping {busy}: a ./bazelw runs in it", result.stderr)


if __name__ == "__main__":
    absltest.main()
