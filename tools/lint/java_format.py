"""Runs the pinned google-java-format on every .java file of the workspace.

`./bazelw run //tools/lint:java_format` checks, as CI does: it names each file the formatter
would change and exits non-zero if there is one. `-- --fix` formats the files in place, then
checks. The formatter is the all-deps jar of npm's google-java-format package (MODULE.bazel's
`@google_java_format`), run by the JDK the build uses (@host_jdk), so every developer and CI run
the same version.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

CHECK = ["--dry-run", "--set-exit-if-changed"]
FIX = ["--replace"]


def java_files(workspace: Path) -> list[str]:
    """The workspace's .java files, relative to it, leaving out Bazel's output links
    (bazel-*) and hidden directories (.git)."""
    found = []
    for directory, subdirectories, files in os.walk(workspace):
        subdirectories[:] = sorted(
            name for name in subdirectories if not name.startswith(("bazel-", "."))
        )
        found += [
            str(Path(directory, name).relative_to(workspace))
            for name in sorted(files)
            if name.endswith(".java")
        ]
    return found


def java_format(formatter: Path, fix: bool) -> int:
    """The formatter over the workspace (BUILD_WORKSPACE_DIRECTORY when run by `bazel run`):
    formats first when `fix`, then checks; the check's exit status."""
    workspace = Path(os.environ.get("BUILD_WORKSPACE_DIRECTORY", ".")).resolve()
    files = java_files(workspace)
    if not files:
        return 0
    # The formatter's launcher (jvm_binary) finds its jars in the runfiles it is part of: this
    # binary's, whose workspace directory `bazel run` starts in.
    env = {**os.environ, "RUNFILES_DIR": os.environ.get("RUNFILES_DIR", str(Path.cwd().parent))}
    if fix:
        subprocess.run([formatter, *FIX, *files], cwd=workspace, env=env, check=False)
    check = subprocess.run([formatter, *CHECK, *files], cwd=workspace, env=env, check=False)
    if check.returncode != 0:
        print("java_format: reformat with ./bazelw run //tools/lint:java_format -- --fix")
    return check.returncode


def main(argv: list[str]) -> int:
    formatter, *options = argv[1:]
    if options not in ([], ["--fix"]):
        print(f"usage: {Path(argv[0]).name} [--fix]", file=sys.stderr)
        return 2
    # Absolute, but not resolved: the launcher must stay inside the runfiles tree.
    return java_format(Path(formatter).absolute(), fix=options == ["--fix"])


if __name__ == "__main__":
    sys.exit(main(sys.argv))
