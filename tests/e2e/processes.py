"""The kit's own tests' servers and client runs, on python/testing/serving.py.

A service's test starts its server with `serving.start`, which waits for SERVING on a plaintext
channel and fails a stop whose exit status is not 0. The kit's tests also start servers that
never answer plaintext health (TLS, verify mode), with workers (one startup line each), or in
the default log format, and end them in other ways (SIGINT, kill) on purpose. So this `Server`
is the same process, with the same pipe readers, that is ready once it has printed its
startup lines, and whose `with` block only kills it: where the exit status is the subject, the
test checks it with `stop()` or `wait()`.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
from collections.abc import Mapping
from pathlib import Path

from python.testing import serving

STARTUP_TIMEOUT_SECONDS = serving.STARTUP_TIMEOUT_SECONDS

# The variables through which the BUILD file passes each service's server binary.
PING_SERVER = "PING_SERVER_BIN"
ROUTE_GUIDE_SERVER = "ROUTE_GUIDE_SERVER_BIN"
ECHO_SERVER = "ECHO_SERVER_BIN"  # tests/deploy/echo_service, a service of the test tree
# tests/services/kittest: the service the runtime's tests run on, so that none needs a sample.
KITTEST_SERVER = "KITTEST_SERVER_BIN"


def binary(env_var: str) -> str:
    """Path of a binary the BUILD file passes in `env` as $(rootpath ...)."""
    path = Path(os.environ[env_var])
    if not path.is_file():
        raise FileNotFoundError(f"{env_var}={path} does not exist")
    return str(path.resolve())


def _non_json(lines: list[str]) -> list[str]:
    """The lines that are not one JSON object each."""
    bad = []
    for line in lines:
        try:
            if isinstance(json.loads(line), dict):
                continue
        except ValueError:
            pass
        bad.append(line)
    return bad


class Server(serving.Server):
    """The server binary in the variable `binary_var` (no default: a test names the service
    it runs) with `args` as its only flags, once it has printed `listeners` startup lines."""

    def __init__(
        self,
        *args: str,
        binary_var: str,
        env: Mapping[str, str] | None = None,
        listeners: int = 1,
    ) -> None:
        super().__init__([binary(binary_var), *args], env)
        try:
            self.wait_for_listeners(listeners)
        except serving.StartError as error:
            self.kill()
            raise serving.StartError(f"server did not start: {error}\n{self.output()}") from None
        self.address = f"localhost:{self.port}"

    def non_json_lines(self) -> list[str]:
        """Lines on stdout or stderr that are not one JSON object each, prefixed with the
        stream's name: [] when every line the server wrote so far is JSON."""
        with self._changed:
            return [f"stdout: {line}" for line in _non_json(self.lines)] + [
                f"stderr: {line}" for line in _non_json(self.stderr_lines)
            ]

    def signal(self, signum: int = signal.SIGTERM) -> None:
        self.process.send_signal(signum)

    def __exit__(self, *exc_info: object) -> None:
        self.kill()


def run(
    env_var: str,
    *args: str,
    env: dict[str, str] | None = None,
    timeout: float = 60.0,
    input: str | None = None,
) -> subprocess.CompletedProcess[str]:
    """Runs a binary to completion, capturing its output."""
    return subprocess.run(
        [binary(env_var), *args],
        env=serving.child_environment(env),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        input=input,
        stdin=None if input is not None else subprocess.DEVNULL,
    )
