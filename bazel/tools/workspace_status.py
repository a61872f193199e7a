"""Bazel's workspace status files (`stable-status.txt`, `volatile-status.txt`) as a dict.

Stamped outputs (image labels, pushed tags) read the keys that tools/workspace_status.sh writes.
"""

from __future__ import annotations

from pathlib import Path


def read_status(status_files: list[str]) -> dict[str, str]:
    """`KEY value` lines of every file; later files win."""
    values: dict[str, str] = {}
    for path in status_files:
        for line in Path(path).read_text(encoding="utf-8").splitlines():
            key, _, value = line.partition(" ")
            values[key] = value
    return values
