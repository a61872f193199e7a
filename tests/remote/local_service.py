"""One run of //tools/remote:local for a test: its own state directory, a free port, a token.

Shared by the tests that speak REAPI to the service as its owner (with the client token the
launcher writes to the test's token directory) and as another local user (without one).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

import grpc
from buildgrid._protos.build.bazel.remote.execution.v2 import (
    remote_execution_pb2 as reapi,
)

LOCAL = os.environ["REMOTE_LOCAL"]
# A bound for a hung start, not a speed goal: on a loaded 2-core machine a start took 2 minutes.
START_TIMEOUT_S = 300.0
# The launcher gives each part 10 s to stop; this bounds a stop that hangs past that.
STOP_TIMEOUT_S = 60.0


def digest(data: bytes) -> reapi.Digest:
    return reapi.Digest(hash=hashlib.sha256(data).hexdigest(), size_bytes=len(data))


def processes_mentioning(text: str) -> list[str]:
    """Command lines of live processes that name `text` (the state directory)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if text in cmdline:
            found.append(f"{entry.name}: {cmdline}")
    return found


class Service:
    """One run of the launcher with its own state directory and a free port.

    Its directory is under /tmp, not TEST_TMPDIR: as root the service's users must be able to
    pass through the state directory's parents, and TEST_TMPDIR is under root's 0700 home.
    """

    def __init__(self, *flags: str) -> None:
        root = Path(tempfile.mkdtemp(prefix="remote-local-test-", dir="/tmp"))
        root.chmod(0o711)
        self.root = root
        self.state_dir = root / "state"
        self.ready_file = root / "endpoint"
        self.output = root / "output.log"
        self.token_dir = root / "tokens"
        with self.output.open("wb") as out:
            self.process = subprocess.Popen(
                [
                    LOCAL,
                    "--port=0",
                    "--workers=1",
                    f"--state_dir={self.state_dir}",
                    f"--ready_file={self.ready_file}",
                    f"--token_dir={self.token_dir}",
                    *flags,
                ],
                stdout=out,
                stderr=subprocess.STDOUT,
            )

    def wait_ready(self) -> str:
        deadline = time.monotonic() + START_TIMEOUT_S
        while not self.ready_file.exists():
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"not ready:\n{self.output.read_text()}")
            time.sleep(0.2)
        return self.ready_file.read_text().strip().removeprefix("grpc://")

    def log(self) -> str:
        return self.output.read_text(errors="replace")

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()

    def remove(self) -> None:
        """Stops it as Ctrl-C does if it still runs (SIGKILL if that hangs), removes its directory.

        Not SIGKILL first: then the run directory in /tmp is left to the launcher's janitor,
        which Bazel kills with the test's other processes when the test ends.
        """
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                self.kill()
        shutil.rmtree(self.root, ignore_errors=True)

    def token(self) -> str:
        return (self.token_dir / "token").read_text().strip()

    def secret(self) -> str:
        return (self.token_dir / "secret").read_text().strip()


class _Bearer(
    grpc.UnaryUnaryClientInterceptor,
    grpc.UnaryStreamClientInterceptor,
    grpc.StreamUnaryClientInterceptor,
    grpc.StreamStreamClientInterceptor,
):
    """Adds `authorization: Bearer TOKEN` to every call, as Bazel's credential helper does."""

    def __init__(self, token: str) -> None:
        self.header = ("authorization", f"Bearer {token}")

    def _with_token(self, details):
        return details._replace(metadata=[*(details.metadata or []), self.header])

    def intercept_unary_unary(self, continuation, details, request):
        return continuation(self._with_token(details), request)

    def intercept_unary_stream(self, continuation, details, request):
        return continuation(self._with_token(details), request)

    def intercept_stream_unary(self, continuation, details, requests):
        return continuation(self._with_token(details), requests)

    def intercept_stream_stream(self, continuation, details, requests):
        return continuation(self._with_token(details), requests)


def channel_with_token(address: str, token: str) -> grpc.Channel:
    return grpc.intercept_channel(grpc.insecure_channel(address), _Bearer(token))
