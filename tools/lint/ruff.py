"""Runs the locked ruff on the workspace: `./bazelw run //tools/lint:ruff -- check`.

Pinned in tools/lock so every developer and CI lint with the same version and rules (ruff.toml).
"""

import os
import sys

from ruff.__main__ import find_ruff_bin

if __name__ == "__main__":
    os.chdir(os.environ.get("BUILD_WORKSPACE_DIRECTORY", "."))
    ruff = find_ruff_bin()
    os.execv(ruff, [ruff, *sys.argv[1:]])
