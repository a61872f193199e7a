"""Starts the real server binary as a process and runs the real client binary, for e2e tests.

The server is asked for port 0 and reports the port it bound in its startup line, so tests
never race another process for a "free" port.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import threading
from pathlib import Path

STARTUP_TIMEOUT_SECONDS = 30.0
_LISTENING = re.compile(r"listening on \[::\]:(\d+)")


def binary(env_var: str) -> str:
    """Path of a binary the BUILD file passes in `env` as $(rootpath ...)."""
    path = Path(os.environ[env_var])
    if not path.is_file():
        raise FileNotFoundError(f"{env_var}={path} does not exist")
    return str(path.resolve())


class Server:
    """The server binary on a port the kernel picked; stop() sends SIGTERM like Cloud Run."""

    def __init__(self, *args: str, env: dict[str, str] | None = None) -> None:
        self.process = subprocess.Popen(
            [binary("SERVER_BIN"), *args],
            env={**os.environ, "PORT": "0", **(env or {})},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.port = self._read_port()
        self.address = f"localhost:{self.port}"

    def _read_port(self) -> int:
        found: list[int] = []
        lines: list[str] = []

        def scan() -> None:
            assert self.process.stdout is not None
            for line in self.process.stdout:
                lines.append(line)
                if match := _LISTENING.search(line):
                    found.append(int(match[1]))
                    return

        reader = threading.Thread(target=scan, daemon=True)
        reader.start()
        reader.join(STARTUP_TIMEOUT_SECONDS)
        if not found:
            self.process.kill()
            _, stderr = self.process.communicate()
            raise RuntimeError(f"server did not start: stdout={''.join(lines)!r} stderr={stderr!r}")
        return found[0]

    def stop(self, timeout: float = 30.0) -> int:
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.communicate()
        return self.process.returncode

    def __enter__(self) -> Server:
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self.process.poll() is None:
            self.stop()


def run(
    env_var: str, *args: str, env: dict[str, str] | None = None, timeout: float = 60.0
) -> subprocess.CompletedProcess[str]:
    """Runs a binary to completion, capturing its output."""
    return subprocess.run(
        [binary(env_var), *args],
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
