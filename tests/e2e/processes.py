"""Starts the real server binary as a process and runs the real client binary, for e2e tests.

The server is asked for port 0 and reports the port it bound in its startup line, so tests
never race another process for a "free" port. Both of its output pipes are read on threads for
the whole of its life: a pipe nobody reads fills up (64 KiB) and then blocks the server in its
next write, which would look like a hang of the server, not of the test.
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
from typing import IO

STARTUP_TIMEOUT_SECONDS = 30.0
# How long wait() gives the readers to reach the end of the pipes once the server has exited
# (a worker process that outlives its parent would hold them open).
_DRAIN_SECONDS = 5.0
_LISTENING = re.compile(r"listening on \[::\]:(\d+)")

# The variables through which the BUILD file passes each service's server binary.
PING_SERVER = "PING_SERVER_BIN"
ROUTE_GUIDE_SERVER = "ROUTE_GUIDE_SERVER_BIN"
ECHO_SERVER = "ECHO_SERVER_BIN"  # tests/deploy/echo_service, a service of the test tree


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


class Server:
    """A service's server binary (the ping service unless `binary_var` says another) on a port
    the kernel picked; stop() sends SIGTERM like Cloud Run.

    Every line the server prints is kept: `lines` from stdout (its JSON logs), `stderr_lines`
    from stderr. After wait() or stop() returns, both hold everything the server wrote.
    """

    def __init__(
        self,
        *args: str,
        env: dict[str, str] | None = None,
        listeners: int = 1,
        binary_var: str = PING_SERVER,
    ) -> None:
        self.process = subprocess.Popen(
            [binary(binary_var), *args],
            env={**os.environ, "PORT": "0", **(env or {})},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            errors="backslashreplace",  # a stray byte must not stop a reader
        )
        self.lines: list[str] = []
        self.stderr_lines: list[str] = []
        self._listening: list[int] = []
        self._stdout_closed = False
        self._changed = threading.Condition()
        assert self.process.stdout is not None and self.process.stderr is not None
        self._readers = [
            threading.Thread(target=self._read_stdout, args=(self.process.stdout,), daemon=True),
            threading.Thread(target=self._read_stderr, args=(self.process.stderr,), daemon=True),
        ]
        for reader in self._readers:
            reader.start()
        self.port = self._wait_for_listeners(listeners)
        self.address = f"localhost:{self.port}"

    def _read_stdout(self, stream: IO[str]) -> None:
        with stream:
            for line in stream:
                with self._changed:
                    self.lines.append(line.rstrip("\n"))
                    if match := _LISTENING.search(line):
                        self._listening.append(int(match[1]))
                    self._changed.notify_all()
        with self._changed:  # no more lines: waiters must not wait out their timeouts
            self._stdout_closed = True
            self._changed.notify_all()

    def _read_stderr(self, stream: IO[str]) -> None:
        with stream:
            for line in stream:
                with self._changed:
                    self.stderr_lines.append(line.rstrip("\n"))

    def _wait_for_listeners(self, count: int) -> int:
        with self._changed:
            self._changed.wait_for(
                lambda: len(self._listening) >= count or self._stdout_closed,
                STARTUP_TIMEOUT_SECONDS,
            )
        if len(self._listening) < count:
            self._kill()
            started = f"{len(self._listening)} of {count} listeners"
            raise RuntimeError(f"server did not start: {started}\n{self.output()}")
        return self._listening[0]

    def output(self) -> str:
        """Everything the server printed so far, for failure messages."""
        with self._changed:
            stdout, stderr = "\n".join(self.lines), "\n".join(self.stderr_lines)
        return f"exit code {self.process.poll()}\n--- stdout:\n{stdout}\n--- stderr:\n{stderr}"

    def non_json_lines(self) -> list[str]:
        """Lines on stdout or stderr that are not one JSON object each, prefixed with the
        stream's name: [] when every line the server wrote so far is JSON."""
        with self._changed:
            return [f"stdout: {line}" for line in _non_json(self.lines)] + [
                f"stderr: {line}" for line in _non_json(self.stderr_lines)
            ]

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
            self._changed.wait_for(lambda: len(matching()) >= count or self._stdout_closed, timeout)
        found = matching()
        if len(found) < count:
            raise AssertionError(
                f"{len(found)} of {count} log lines in {timeout} s\n{self.output()}"
            )
        return found[:count]

    def wait_for_log(self, predicate: Callable[[dict], bool], timeout: float = 10.0) -> dict:
        return self.wait_for_logs(predicate, 1, timeout)[0]

    def signal(self, signum: int = signal.SIGTERM) -> None:
        self.process.send_signal(signum)

    def wait(self, timeout: float = 30.0) -> int:
        """The exit code, once the server has exited and its output has been read."""
        try:
            code = self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self._kill()
            raise
        self._join_readers()
        return code

    def stop(self, timeout: float = 30.0) -> int:
        self.signal(signal.SIGTERM)
        return self.wait(timeout)

    def _kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        self._join_readers()

    def _join_readers(self) -> None:
        for reader in self._readers:
            reader.join(_DRAIN_SECONDS)

    def __enter__(self) -> Server:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._kill()


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
