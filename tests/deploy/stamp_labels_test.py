"""With --stamp, the image config labels the source revision and release from Bazel's
workspace status (tools/workspace_status.sh); without it, nothing. Outside a git checkout the
status script still succeeds (Bazel runs it for every build) but leaves the git keys out, and a
stamped image then fails with the missing key named, never labelled `unknown`."""

import os
import subprocess
import tempfile
from pathlib import Path

from absl.testing import absltest

from bazel.tools.oci_image import StampError, stamp_labels

SCRIPT = Path(os.environ["WORKSPACE_STATUS"]).resolve()


def run_status(directory: Path, **env: str) -> subprocess.CompletedProcess[str]:
    """The status script as Bazel runs it, from `directory`."""
    return subprocess.run(
        ["bash", str(SCRIPT)],
        cwd=directory,
        env={"PATH": os.environ["PATH"], "HOME": str(directory), **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


class StampLabelsTest(absltest.TestCase):
    def setUp(self) -> None:
        super().setUp()
        self.directory = Path(tempfile.mkdtemp(dir=os.environ.get("TEST_TMPDIR")))

    def status_files(self, stable: str) -> list[str]:
        stable_file = self.directory / "stable-status.txt"
        stable_file.write_text(stable)
        volatile = self.directory / "volatile-status.txt"
        volatile.write_text("BUILD_TIMESTAMP 1795241207\n")
        return [str(stable_file), str(volatile)]

    def test_labels_from_status_files(self) -> None:
        files = self.status_files(
            "BUILD_EMBED_LABEL \nSTABLE_GIT_COMMIT 32af46c\nSTABLE_RELEASE v1.2.3\n"
        )
        self.assertEqual(
            stamp_labels(files),
            {
                "org.opencontainers.image.revision": "32af46c",
                "org.opencontainers.image.version": "v1.2.3",
            },
        )

    def test_unstamped_build_has_no_labels(self) -> None:
        self.assertEqual(stamp_labels([]), {})

    def test_stamped_without_git_keys_fails_naming_them(self) -> None:
        files = self.status_files("BUILD_EMBED_LABEL \nSTABLE_RELEASE v1.2.3\n")
        expected = r"^--stamp: the workspace status has no STABLE_GIT_COMMIT: .*git checkout"
        with self.assertRaisesRegex(StampError, expected):
            stamp_labels(files)

    def test_status_outside_a_git_checkout_leaves_the_git_keys_out(self) -> None:
        result = run_status(self.directory, GIT_CEILING_DIRECTORIES=str(self.directory.parent))
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertEqual(result.stdout, "")
        self.assertIn(
            "no STABLE_GIT_COMMIT: git rev-parse HEAD failed: fatal: not a git", result.stderr
        )
        released = run_status(
            self.directory, GIT_CEILING_DIRECTORIES=str(self.directory.parent), RELEASE="v2"
        )
        self.assertEqual(released.stdout, "STABLE_RELEASE v2\n")

    def test_status_in_a_git_checkout(self) -> None:
        def git(*args: str) -> str:
            return subprocess.run(
                ["git", "-c", "user.name=t", "-c", "user.email=t@t", *args],
                cwd=self.directory,
                env={"PATH": os.environ["PATH"], "HOME": str(self.directory)},
                capture_output=True,
                text=True,
                check=True,
            ).stdout.strip()

        git("init", "-q")
        (self.directory / "file").write_text("x")
        git("add", "file")
        git("commit", "-q", "-m", "one")
        git("tag", "v0.1.0")
        commit = git("rev-parse", "HEAD")
        result = run_status(self.directory)
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertEqual(result.stdout, f"STABLE_GIT_COMMIT {commit}\nSTABLE_RELEASE v0.1.0\n")


if __name__ == "__main__":
    absltest.main()
