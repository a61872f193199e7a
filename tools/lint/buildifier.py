"""Runs the pinned buildifier on every BUILD, .bzl and MODULE.bazel file of the workspace.

`./bazelw run //tools/lint:buildifier` checks formatting and lint warnings, as CI does, and
exits non-zero on either; `-- --fix` rewrites the files and fixes what lint can, then checks
what is left. The binary comes from MODULE.bazel's `@buildifier` (npm's @bazel/buildifier),
so every developer and CI run the same version.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

CHECK = ["-mode=check", "-lint=warn"]
FIX = ["-mode=fix", "-lint=fix"]


def buildifier(binary: Path, fix: bool) -> int:
    """Buildifier over the workspace (`-r .`, from BUILD_WORKSPACE_DIRECTORY when run by
    `bazel run`): fixes first when `fix`, then checks; the check's exit status."""
    workspace = os.environ.get("BUILD_WORKSPACE_DIRECTORY", ".")
    if fix:
        subprocess.run([binary, *FIX, "-r", "."], cwd=workspace, check=False)
    return subprocess.run([binary, *CHECK, "-r", "."], cwd=workspace, check=False).returncode


def main(argv: list[str]) -> int:
    binary, *options = argv[1:]
    if options not in ([], ["--fix"]):
        print(f"usage: {Path(argv[0]).name} [--fix]", file=sys.stderr)
        return 2
    return buildifier(Path(binary).resolve(), fix=options == ["--fix"])


if __name__ == "__main__":
    sys.exit(main(sys.argv))
