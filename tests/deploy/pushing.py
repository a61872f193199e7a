"""Runs an oci_push target's launcher (as `bazel run` would) and reads its per-blob progress;
or runs it measuring its peak memory."""

from __future__ import annotations

import dataclasses
import os
import re
import signal
import subprocess
import tempfile
import threading
from pathlib import Path

# `uploaded sha256:... N bytes`; in a push of services, prefixed by the service: `ping: ...`,
# or `ping (ping-staging): ...` when its environment renamed it.
BLOB_LINE = re.compile(
    r"^(?:([a-z][-a-z0-9]*)(?: \([-a-z0-9]+\))?: )?"
    r"(uploaded|skipped|mounted) (sha256:[0-9a-f]{64}) (\d+) bytes",
    re.MULTILINE,
)


@dataclasses.dataclass
class PushResult:
    returncode: int
    stdout: str
    stderr: str

    def blobs(self, outcome: str, service: str | None = None) -> list[str]:
        """Digests the push reported as `uploaded`, `mounted` or `skipped` (for `service`, or
        for every image pushed)."""
        return [
            m.group(3)
            for m in BLOB_LINE.finditer(self.stderr)
            if m.group(2) == outcome and (service is None or m.group(1) == service)
        ]

    def summary(self) -> dict[str, str]:
        """The closing lines of a push of services, `SERVICE: what happened`, by service (as
        the line names it: `ping (ping-staging)` for a renamed one)."""
        lines = [line.partition(": ") for line in self.stdout.splitlines()]
        return {service: outcome for service, _, outcome in lines}


def run_push(
    launcher: str,
    *args: str,
    env: dict[str, str] | None = None,
    timeout: float = 180,
    cwd: Path | None = None,
) -> PushResult:
    """Runs the push to completion, with no TTY (stdin closed), as in a release pipeline,
    from `cwd` (as the directory `bazel run` was started from; default: the test's)."""
    result = subprocess.run(
        [os.path.abspath(launcher), *args],
        cwd=cwd,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
        check=False,
    )
    return PushResult(result.returncode, result.stdout, result.stderr)


def run_push_measured(
    launcher: str, *args: str, env: dict[str, str] | None = None, timeout: float = 180
) -> tuple[PushResult, int]:
    """Runs the push as run_push does; also returns the peak resident memory, in bytes, of its
    largest process (wait4's rusage covers the launcher and every process it waited for)."""
    with tempfile.TemporaryFile("w+") as stdout, tempfile.TemporaryFile("w+") as stderr:
        process = subprocess.Popen(
            [os.path.abspath(launcher), *args],
            stdin=subprocess.DEVNULL,
            stdout=stdout,
            stderr=stderr,
            text=True,
            env={**os.environ, **(env or {})},
        )
        killer = threading.Timer(timeout, process.kill)
        killer.start()
        try:
            _, status, usage = os.wait4(process.pid, 0)
        finally:
            killer.cancel()
        process.returncode = os.waitstatus_to_exitcode(status)
        if process.returncode == -signal.SIGKILL:
            raise subprocess.TimeoutExpired(launcher, timeout)
        stdout.seek(0)
        stderr.seek(0)
        result = PushResult(process.returncode, stdout.read(), stderr.read())
    return result, usage.ru_maxrss * 1024  # Linux counts ru_maxrss in KiB
