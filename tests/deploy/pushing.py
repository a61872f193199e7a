"""Runs an oci_push target's launcher (as `bazel run` would) and reads its per-blob progress."""

from __future__ import annotations

import dataclasses
import os
import re
import subprocess

BLOB_LINE = re.compile(r"^(uploaded|skipped) (sha256:[0-9a-f]{64}) (\d+) bytes", re.MULTILINE)


@dataclasses.dataclass
class PushResult:
    returncode: int
    stdout: str
    stderr: str

    def blobs(self, outcome: str) -> list[str]:
        """Digests the push reported as `uploaded` or `skipped`."""
        return [m.group(2) for m in BLOB_LINE.finditer(self.stderr) if m.group(1) == outcome]


def run_push(
    launcher: str, *args: str, env: dict[str, str] | None = None, timeout: float = 180
) -> PushResult:
    """Runs the push to completion, with no TTY (stdin closed), as in a release pipeline."""
    result = subprocess.run(
        [launcher, *args],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
        check=False,
    )
    return PushResult(result.returncode, result.stdout, result.stderr)
