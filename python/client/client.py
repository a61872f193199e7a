"""The kit's client binary: `bazel run //python/client -- [FLAGS] SUBCOMMAND [FLAGS] ...` with
the subcommands every kit server answers (health, call, list, describe); see main.py."""

from __future__ import annotations

import sys

from python.client import main

if __name__ == "__main__":
    sys.exit(main.main(sys.argv[1:]))
