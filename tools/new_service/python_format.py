"""The written Python, formatted as `./bazelw run //tools/lint:format` would format it.

The templates are formatted for a name of a usual length; a long one (Cloud Run allows 49
characters) pushes lines past the workspace's line length, where ruff would wrap them. So
every Python file goes through the workspace's pinned ruff, with its ruff.toml, before it is
written: imports sorted, then formatted. The service then passes CI's lint as written, whatever
its name, and a template that a person edits need not be formatted by hand.
"""

from __future__ import annotations

import dataclasses
import subprocess
from collections.abc import Sequence
from pathlib import Path

from ruff.__main__ import find_ruff_bin

from tools.new_service.files import File


class FormatError(Exception):
    """ruff refused a file (a template that is not valid Python); the message is its error."""


def formatted(workspace: Path, files: Sequence[File]) -> list[File]:
    return [
        dataclasses.replace(file, content=_format(workspace, file))
        if file.path.suffix == ".py"
        else file
        for file in files
    ]


def _format(workspace: Path, file: File) -> str:
    content = file.content
    for command in (["check", "--fix", "--exit-zero", "--select", "I"], ["format"]):
        ruff = subprocess.run(
            [find_ruff_bin(), *command, "--no-cache", "--stdin-filename", str(file.path), "-"],
            cwd=workspace,
            input=content,
            capture_output=True,
            text=True,
            check=False,
        )
        if ruff.returncode != 0:
            first = (ruff.stderr.strip().splitlines() or ["no message"])[0]
            raise FormatError(f"{file.path}: ruff {command[0]}: {first}")
        content = ruff.stdout
    return content
