"""Fails when proto/ breaks what a git ref of it promised to clients.

`./bazelw run //tools/lint:proto_breaking -- --against=REF` exports REF's proto/ with
`git archive` and runs `buf breaking` on the checkout's proto/ (the working tree, uncommitted
changes included) against it, with the rules of proto/buf.yaml (FILE). A renumbered field, a
removed method or a changed type reaches clients that were built against REF; each finding is
printed as `proto/FILE:LINE:COLUMN: MESSAGE (RULE)`.

Exit status: 0 compatible (or REF has no proto/, so there is nothing to break), 1 breaking
changes or protos buf cannot read, 2 bad usage or a REF that is not a commit of the checkout.
An exported copy, rather than buf's own `.git#ref=` input, lets a bad REF get one clear line
and works whatever the checkout's .git is (a directory or a worktree's file).
"""

from __future__ import annotations

import argparse
import io
import os
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

from tools.lint.buf import JSON, readable

PROTO_ROOT = "proto"


class UsageError(Exception):
    """Bad arguments or a REF that names no commit: one line, exit 2."""


def resolve(workspace: Path, ref: str) -> str:
    """The commit REF names in the workspace's repository."""
    found = subprocess.run(
        ["git", "rev-parse", "--verify", "--quiet", "--end-of-options", f"{ref}^{{commit}}"],
        cwd=workspace,
        capture_output=True,
        text=True,
        check=False,
    )
    if found.returncode != 0 or not found.stdout.strip():
        raise UsageError(f"--against={ref} is not a commit of the git repository at {workspace}")
    return found.stdout.strip()


def export(workspace: Path, commit: str, destination: Path) -> bool:
    """Writes the commit's proto/ under destination; False when the commit has none."""
    listed = subprocess.run(
        ["git", "ls-tree", "-d", "--name-only", commit, PROTO_ROOT],
        cwd=workspace,
        capture_output=True,
        text=True,
        check=True,
    )
    if not listed.stdout.strip():
        return False
    archive = subprocess.run(
        ["git", "archive", "--format=tar", commit, PROTO_ROOT],
        cwd=workspace,
        capture_output=True,
        check=True,
    )
    with tarfile.open(fileobj=io.BytesIO(archive.stdout)) as tar:
        tar.extractall(destination, filter="data")
    return True


def breaking(buf: Path, workspace: Path, ref: str) -> int:
    """Runs buf breaking of the workspace's proto/ against REF's; the exit status."""
    commit = resolve(workspace, ref)
    if not (workspace / PROTO_ROOT).is_dir():
        raise UsageError(f"{workspace} has no {PROTO_ROOT}/ directory to check")
    with tempfile.TemporaryDirectory(prefix="proto_breaking.") as exported:
        if not export(workspace, commit, Path(exported)):
            print(f"proto_breaking: {ref} has no {PROTO_ROOT}/: nothing it promised can break")
            return 0
        against = Path(exported) / PROTO_ROOT
        result = subprocess.run(
            [buf, "breaking", PROTO_ROOT, "--against", against, *JSON],
            cwd=workspace,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            check=False,
        )
    if result.stdout.strip():
        print(readable(result.stdout))
    named = ref if commit.startswith(ref) else f"{ref} ({commit[:12]})"
    if result.returncode == 0:
        print(f"proto_breaking: {PROTO_ROOT}/ is compatible with {named}")
        return 0
    print(f"proto_breaking: {PROTO_ROOT}/ breaks what {named} promised")
    return 1


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="proto_breaking", description=__doc__.split("\n")[0])
    parser.add_argument("buf", type=Path, help="the buf binary (given by the BUILD target)")
    parser.add_argument("--against", required=True, help="a git ref: a branch, tag or commit")
    options = parser.parse_args(argv[1:])
    workspace = Path(os.environ.get("BUILD_WORKSPACE_DIRECTORY", "."))
    try:
        return breaking(options.buf.resolve(), workspace, options.against)
    except UsageError as error:
        print(f"proto_breaking: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
