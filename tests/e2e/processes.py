"""Starts the real server binary as a process and runs the real client binary, for e2e tests.

The server is asked for port 0 and reports the port it bound in its startup line, so tests
never race another process for a "free" port.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import threading
from collections.abc import Callable
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
    """The server binary on a port the kernel picked; stop() sends SIGTERM like Cloud Run.

    Every line the server prints is kept in `lines` (its JSON logs), read by a thread so the
    pipe never fills.
    """

    def __init__(self, *args: str, env: dict[str, str] | None = None, listeners: int = 1) -> None:
        self.process = subprocess.Popen(
            [binary("SERVER_BIN"), *args],
            env={**os.environ, "PORT": "0", **(env or {})},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.lines: list[str] = []
        self._listening: list[int] = []
        self._changed = threading.Condition()
        threading.Thread(target=self._read_stdout, daemon=True).start()
        self.port = self._wait_for_listeners(listeners)
        self.address = f"localhost:{self.port}"

    def _read_stdout(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            with self._changed:
                self.lines.append(line)
                if match := _LISTENING.search(line):
                    self._listening.append(int(match[1]))
                self._changed.notify_all()

    def _wait_for_listeners(self, count: int) -> int:
        with self._changed:
            ready = self._changed.wait_for(
                lambda: len(self._listening) >= count or self.process.poll() is not None,
                STARTUP_TIMEOUT_SECONDS,
            )
        if not ready or len(self._listening) < count:
            self.process.kill()
            _, stderr = self.process.communicate()
            raise RuntimeError(f"server did not start: stdout={self.lines!r} stderr={stderr!r}")
        return self._listening[0]

    def logs(self) -> list[dict]:
        """The JSON log lines printed so far."""
        with self._changed:
            return [json.loads(line) for line in self.lines if line.startswith("{")]

    def wait_for_logs(
        self, predicate: Callable[[dict], bool], count: int = 1, timeout: float = 10.0
    ) -> list[dict]:
        """The first `count` JSON log lines that match, waiting for them to be printed."""

        def matching() -> list[dict]:
            return [entry for entry in self.logs() if predicate(entry)]

        with self._changed:
            self._changed.wait_for(lambda: len(matching()) >= count, timeout)
        found = matching()
        if len(found) < count:
            raise AssertionError(f"{len(found)} of {count} log lines in {timeout} s: {self.lines}")
        return found[:count]

    def wait_for_log(self, predicate: Callable[[dict], bool], timeout: float = 10.0) -> dict:
        return self.wait_for_logs(predicate, 1, timeout)[0]

    def signal(self, signum: int = signal.SIGTERM) -> None:
        self.process.send_signal(signum)

    def wait(self, timeout: float = 30.0) -> int:
        try:
            return self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            raise

    def stop(self, timeout: float = 30.0) -> int:
        self.signal(signal.SIGTERM)
        return self.wait(timeout)

    def __enter__(self) -> Server:
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()


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
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        input=input,
        stdin=None if input is not None else subprocess.DEVNULL,
    )
