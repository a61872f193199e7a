"""Re-locks a requirements input into a hashed lock with uv: `./bazelw run //:requirements.update`.

The lock is universal (every platform's wheels are hashed, with environment markers), so the
same file serves the build machine and the linux/amd64 container image. Pins already in the
lock are kept unless the input asks otherwise; pass `--upgrade` to move to the newest versions.
The new lock replaces the old one only when uv succeeds.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from uv import find_uv_bin

OLDEST_PYTHON = "3.11"  # the oldest CPython a lock is resolved for, unless told otherwise


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("requirements_in", help="input, relative to the workspace")
    parser.add_argument("lock", help="lock file to write, relative to the workspace")
    parser.add_argument("--upgrade", action="store_true", help="newest versions for every pin")
    parser.add_argument("--command", default="", help="how to rerun this, for the lock's header")
    parser.add_argument(
        "--python_version",
        default=OLDEST_PYTHON,
        help="oldest CPython the lock must serve (default: %(default)s)",
    )
    args = parser.parse_args()

    workspace = Path(os.environ.get("BUILD_WORKSPACE_DIRECTORY", "."))
    requirements_in, lock = workspace / args.requirements_in, workspace / args.lock
    if not requirements_in.is_file():
        print(f"requirements.update: no such file: {requirements_in}", file=sys.stderr)
        return 2

    with tempfile.TemporaryDirectory(dir=lock.parent) as scratch:
        new_lock = Path(scratch) / lock.name
        if lock.exists():
            shutil.copyfile(lock, new_lock)  # uv keeps the pins it finds in the output file
        command = [
            find_uv_bin(),
            "pip",
            "compile",
            "--quiet",
            "--native-tls",
            "--universal",
            "--python-version",
            args.python_version,
            "--generate-hashes",
            "--custom-compile-command",
            args.command,
            "--output-file",
            str(new_lock),
            args.requirements_in,
        ]
        if args.upgrade:
            command.append("--upgrade")
        result = subprocess.run(command, cwd=workspace, check=False)
        if result.returncode != 0:
            print(
                f"requirements.update: uv failed ({result.returncode}); {lock} unchanged",
                file=sys.stderr,
            )
            return 1
        os.replace(new_lock, lock)
    print(f"requirements.update: wrote {lock}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
