"""Formats the whole workspace, as CI checks it: `./bazelw run //tools/lint:format`.

Python with ruff (`ruff format`, then the fixes `ruff check --fix` can make), then BUILD, .bzl
and MODULE.bazel files with buildifier (`--fix`). Exits non-zero when something is left that
needs a person: a lint warning neither tool can fix.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from ruff.__main__ import find_ruff_bin

from tools.lint.buildifier import buildifier


def main(argv: list[str]) -> int:
    buildifier_binary = Path(argv[1]).resolve()
    workspace = os.environ.get("BUILD_WORKSPACE_DIRECTORY", ".")
    ruff = find_ruff_bin()
    formatted = subprocess.run([ruff, "format"], cwd=workspace, check=False).returncode
    checked = subprocess.run([ruff, "check", "--fix"], cwd=workspace, check=False).returncode
    return formatted or checked or buildifier(buildifier_binary, fix=True)


if __name__ == "__main__":
    sys.exit(main(sys.argv))
