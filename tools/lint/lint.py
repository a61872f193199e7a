"""Every check CI runs, in one command: `./bazelw run //tools/lint` (`-- --fix` to fix first).

CI runs exactly this (.ci/run), so a clean run here is a clean lint in CI. Each check prints one
line, `ok` or `FAILED`, and a failed check's output follows it, indented. With `--fix`, each
check that can fix runs its fix first, then its check, which reports what is left for a person
(buf lint and the sample-free check have no fix). Exits 1 when any check failed, 2 on bad usage.

The checks are the one list in checks() below; a new check is one entry there, and its binary,
if it is not a Python package, a `--tool=NAME=$(rootpath ...)` argument and a data entry of the
`lint` target in BUILD.bazel.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from ruff.__main__ import find_ruff_bin

from tools.lint import buf, buildifier, java_format

# Fails when a kit target outside the samples depends on a sample (docs/testing.md).
SAMPLE_FREE = "tools/sample_free/check.py"


@dataclass(frozen=True)
class Check:
    """A check: its command, the command that fixes what it can (if any), and how its output is
    shown to a person."""

    name: str
    check: Sequence[str | Path]
    fix: Sequence[str | Path] | None = None
    readable: Callable[[str], str] = str


def checks(tools: Mapping[str, Path], workspace: Path) -> list[Check]:
    """Every check CI runs, in the order they run, each from the workspace's root."""
    ruff = find_ruff_bin()
    all_checks = [
        Check("ruff check", [ruff, "check"], fix=[ruff, "check", "--fix"]),
        Check("ruff format", [ruff, "format", "--check"], fix=[ruff, "format"]),
        Check(
            "buildifier",
            [tools["buildifier"], *buildifier.CHECK, "-r", "."],
            fix=[tools["buildifier"], *buildifier.FIX, "-r", "."],
        ),
        Check("buf lint", [tools["buf"], "lint", "proto", *buf.JSON], readable=buf.readable),
        # The workspace's own script, as CI ran it: it queries the workspace with its ./bazelw.
        Check("sample free", [sys.executable, SAMPLE_FREE]),
    ]
    # google-java-format refuses an empty list of files: a workspace without Java skips it.
    if java := java_format.java_files(workspace):
        formatter = tools["google_java_format"]
        all_checks.append(
            Check(
                "java format",
                [formatter, *java_format.CHECK, *java],
                fix=[formatter, *java_format.FIX, *java],
            )
        )
    return all_checks


def run(command: Sequence[str | Path], workspace: Path) -> subprocess.CompletedProcess[str]:
    """The command's exit status and its output, stdout and stderr in the order written."""
    return subprocess.run(
        command,
        cwd=workspace,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        check=False,
    )


def lint(all_checks: Sequence[Check], workspace: Path, fix: bool) -> int:
    """Runs each check (after its fix, when fixing); 1 if any failed."""
    failed = 0
    for check in all_checks:
        if fix and check.fix is not None:
            run(check.fix, workspace)
        result = run(check.check, workspace)
        if result.returncode == 0:
            print(f"ok      {check.name}", flush=True)
            continue
        failed += 1
        print(f"FAILED  {check.name} (exit {result.returncode})", flush=True)
        for line in check.readable(result.stdout).splitlines():
            print(f"        {line}", flush=True)
    return 1 if failed else 0


def tool(value: str) -> tuple[str, Path]:
    """`NAME=PATH` of a --tool argument."""
    name, separator, path = value.partition("=")
    if not separator or not name or not path:
        raise argparse.ArgumentTypeError(f"expected NAME=PATH, got {value!r}")
    # Absolute, not resolved: google-java-format's launcher finds its jars only from inside
    # the runfiles tree.
    return name, Path(path).absolute()


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="lint", description=__doc__.split("\n")[0])
    parser.add_argument("--fix", action="store_true", help="fix what can be fixed, then check")
    parser.add_argument(
        "--tool", type=tool, action="append", default=[], help="NAME=PATH (from BUILD.bazel)"
    )
    options = parser.parse_args(argv[1:])
    workspace = Path(os.environ.get("BUILD_WORKSPACE_DIRECTORY", "."))
    # The runfiles the launchers look in: this binary's, whose workspace directory `bazel run`
    # starts in.
    os.environ.setdefault("RUNFILES_DIR", str(Path.cwd().parent))
    try:
        all_checks = checks(dict(options.tool), workspace)
    except KeyError as missing:
        parser.error(f"no --tool={missing.args[0]}=PATH (BUILD.bazel gives each binary)")
    return lint(all_checks, workspace, fix=options.fix)


if __name__ == "__main__":
    sys.exit(main(sys.argv))
