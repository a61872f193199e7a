"""Writes a set of files all or none, so that a failure leaves the workspace as it was.

Each file goes first to a temporary file beside it, then every one is renamed into place
(rename is atomic: a reader sees the old file or the new one, never half of one). A failure at
any step removes the temporary files, puts back what the renames had replaced, and removes the
directories made for the new files: a second run then finds nothing half-written that would make
it refuse the name as taken.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path

# The mode of a new file (a temporary file is made 0600).
NEW_FILE_MODE = 0o644


@dataclasses.dataclass(frozen=True)
class File:
    """A file to write: its path in the workspace, and its whole content."""

    path: Path
    content: str


class WriteError(Exception):
    """A file could not be written; nothing was."""

    def __init__(self, path: Path, error: OSError) -> None:
        super().__init__(f"cannot write {path}: {error.strerror or error}")


def write_all(root: Path, files: Sequence[File]) -> None:
    """Writes every file under `root`, or none (WriteError)."""
    made_directories: list[Path] = []
    staged: list[tuple[Path, Path, bytes | None]] = []  # temporary file, target, old content
    renamed: list[tuple[Path, bytes | None]] = []
    current = files[0].path if files else Path()
    try:
        for file in files:
            current = file.path
            target = root / file.path
            made_directories += _make_directories(root, target.parent)
            old = target.read_bytes() if target.exists() else None
            mode = target.stat().st_mode & 0o7777 if old is not None else NEW_FILE_MODE
            staged.append((_stage(target, file.content.encode(), mode), target, old))
        for temporary, target, old in staged:
            current = target.relative_to(root)
            temporary.replace(target)
            renamed.append((target, old))
    except OSError as error:
        _undo(staged, renamed, made_directories)
        raise WriteError(current, error) from error
    except BaseException:
        _undo(staged, renamed, made_directories)
        raise


def _make_directories(root: Path, directory: Path) -> list[Path]:
    """Makes `directory` and its missing parents under `root`; the ones it made, outermost
    first."""
    missing = [d for d in [directory, *directory.parents] if d.is_relative_to(root)]
    missing = [d for d in reversed(missing) if not d.exists()]
    for made in missing:
        made.mkdir()
    return missing


def _stage(target: Path, content: bytes, mode: int) -> Path:
    descriptor, name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    temporary = Path(name)
    try:
        with os.fdopen(descriptor, "wb") as out:
            out.write(content)
        temporary.chmod(mode)
    except BaseException:
        temporary.unlink()
        raise
    return temporary


def _undo(
    staged: list[tuple[Path, Path, bytes | None]],
    renamed: list[tuple[Path, bytes | None]],
    made_directories: list[Path],
) -> None:
    """Best effort back to the state before write_all: each step is tried even when one fails,
    so that one stuck file does not leave the others behind."""
    for temporary, _, _ in staged:
        with contextlib.suppress(FileNotFoundError):
            temporary.unlink()
    for target, old in reversed(renamed):
        with contextlib.suppress(OSError):
            if old is None:
                target.unlink()
            else:
                restored = _stage(target, old, target.stat().st_mode & 0o7777)
                restored.replace(target)
    for directory in reversed(made_directories):
        with contextlib.suppress(OSError):
            directory.rmdir()
