"""Runs a service's server binary in its own test, as Cloud Run runs it: `serving.start(path)`.

A servicer called directly skips what its `main` wires up: the registration, the runtime's
flags, health, reflection, the interceptors. So a service's test starts the real binary (the
py_binary it lists in `data`) as a process:

- on a free port: the process gets `PORT=0`, as Cloud Run passes `$PORT`, and the kernel picks
  the port, which the server names in its startup log line. No port is probed free and then
  reused, so tests running side by side never race for one;
- with the runtime's real flags: `--log_format=json`, Cloud Run's format, which the test reads,
  and whatever flags the test adds;
- ready when health says SERVING, read from a Health.Watch stream: an event, never a sleep or a
  poll. A server that exits first fails the start at once, with everything it printed;
- stopped with SIGTERM, as Cloud Run stops an instance, and its exit status must be 0: a
  server that crashes on its way down fails its test.

Both output pipes are read on threads for the server's whole life: a pipe that nobody reads
fills (64 KiB) and then blocks the server in its next log line, which would look like a hang.
The child gets the test's environment without PYTHONPATH: the test's points at the test's
runfiles, and a py_binary started from it must find its own packages, as it will in its image.

    with serving.start(os.environ["SERVER"]) as server:
        stub = greeter_pb2_grpc.GreeterStub(server.channel)
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from typing import IO

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

STARTUP_TIMEOUT_SECONDS = 30.0
# Past the runtime's default grace after SIGTERM (8 s), with room for a busy machine.
STOP_TIMEOUT_SECONDS = 30.0
LOG_TIMEOUT_SECONDS = 10.0
# A reader thread left waiting on a pipe that a child of the server still holds open.
_DRAIN_SECONDS = 5.0
# The runtime's startup line, "NAME listening on [::]:PORT", in the JSON format and the text
# one alike; a server with workers prints one per worker.
_LISTENING = re.compile(r"listening on \[::\]:(\d+)")


class StartError(RuntimeError):
    """The server exited, or was not listening or SERVING in time; the message holds all that
    the server printed."""


def child_environment(env: Mapping[str, str] | None = None) -> dict[str, str]:
    """The test's environment for a binary it starts, without PYTHONPATH, with `env` on top."""
    inherited = {name: value for name, value in os.environ.items() if name != "PYTHONPATH"}
    return {**inherited, **(env or {})}


class Server:
    """A server binary started with `PORT=0` and `argv`, its output read on threads: the
    stdout `lines` (its logs) and `stderr_lines`, both whole once `wait()` or `stop()` returns.
    `start()` makes one and waits for SERVING; the kit's own tests also make them directly."""

    def __init__(self, argv: Sequence[str], env: Mapping[str, str] | None = None) -> None:
        self.process = subprocess.Popen(
            list(argv),
            env=child_environment({"PORT": "0", **(env or {})}),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            errors="backslashreplace",  # a stray byte must not stop a reader
        )
        self.lines: list[str] = []
        self.stderr_lines: list[str] = []
        self.listening: list[int] = []  # the ports of the startup lines, in order
        self._channel: grpc.Channel | None = None
        self._stdout_closed = False
        self._watch: grpc.Future | None = None
        self._changed = threading.Condition()
        assert self.process.stdout is not None and self.process.stderr is not None
        self._readers = [
            threading.Thread(target=self._read_stdout, args=(self.process.stdout,), daemon=True),
            threading.Thread(target=self._read_stderr, args=(self.process.stderr,), daemon=True),
        ]
        for reader in self._readers:
            reader.start()

    @property
    def port(self) -> int | None:
        """The port of the first startup line, None before it."""
        with self._changed:
            return self.listening[0] if self.listening else None

    @property
    def channel(self) -> grpc.Channel:
        """A plaintext channel to the server, as Cloud Run's front end talks to it (h2c)."""
        if self._channel is None:
            raise StartError("the server has not started")
        return self._channel

    def _read_stdout(self, stream: IO[str]) -> None:
        with stream:
            for line in stream:
                with self._changed:
                    self.lines.append(line.rstrip("\n"))
                    if match := _LISTENING.search(line):
                        self.listening.append(int(match[1]))
                    self._changed.notify_all()
        with self._changed:  # no more lines: waiters must not wait out their timeouts
            self._stdout_closed = True
            self._changed.notify_all()
            if self._watch is not None:
                self._watch.cancel()  # a start waiting for SERVING fails now, not at its timeout

    def _read_stderr(self, stream: IO[str]) -> None:
        with stream:
            for line in stream:
                with self._changed:
                    self.stderr_lines.append(line.rstrip("\n"))

    def wait_for_listeners(self, count: int, timeout: float = STARTUP_TIMEOUT_SECONDS) -> int:
        """The first port, once `count` startup lines are printed (one per worker)."""
        with self._changed:
            self._changed.wait_for(
                lambda: len(self.listening) >= count or self._stdout_closed, timeout
            )
            if len(self.listening) < count:
                raise StartError(f"{len(self.listening)} of {count} startup lines")
            return self.listening[0]

    def wait_until_serving(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        port = self.wait_for_listeners(1, timeout)
        self._channel = grpc.insecure_channel(f"localhost:{port}")
        watch = health_pb2_grpc.HealthStub(self._channel).Watch(
            health_pb2.HealthCheckRequest(),
            timeout=max(deadline - time.monotonic(), 0.0),
            wait_for_ready=True,
        )
        with self._changed:
            self._watch = watch
            if self._stdout_closed:
                watch.cancel()
        try:
            for response in watch:
                if response.status == health_pb2.HealthCheckResponse.SERVING:
                    return
        except grpc.RpcError as error:
            raise StartError(f"not SERVING: {error.code().name}") from None
        finally:
            watch.cancel()
        raise StartError("health ended its Watch before SERVING")

    def output(self) -> str:
        """Everything the server printed so far, for failure messages."""
        with self._changed:
            stdout, stderr = "\n".join(self.lines), "\n".join(self.stderr_lines)
        return f"exit code {self.process.poll()}\n--- stdout:\n{stdout}\n--- stderr:\n{stderr}"

    def logs(self) -> list[dict]:
        """The JSON log lines printed so far."""
        with self._changed:
            return [entry for entry in map(_json_object, self.lines) if entry is not None]

    def wait_for_logs(
        self,
        predicate: Callable[[dict], bool],
        count: int = 1,
        timeout: float = LOG_TIMEOUT_SECONDS,
    ) -> list[dict]:
        """The first `count` JSON log lines that match, waiting until the server prints them
        (a call's log line is written shortly after the call returns)."""

        def matching() -> list[dict]:
            return [entry for entry in self.logs() if predicate(entry)]

        with self._changed:
            self._changed.wait_for(lambda: len(matching()) >= count or self._stdout_closed, timeout)
        found = matching()
        if len(found) < count:
            raise AssertionError(
                f"{len(found)} of {count} matching log lines in {timeout} s\n{self.output()}"
            )
        return found[:count]

    def wait_for_log(
        self, predicate: Callable[[dict], bool], timeout: float = LOG_TIMEOUT_SECONDS
    ) -> dict:
        """The first JSON log line that matches, waiting until the server prints it."""
        return self.wait_for_logs(predicate, 1, timeout)[0]

    def wait(self, timeout: float = STOP_TIMEOUT_SECONDS) -> int:
        """The exit status, once the server has exited and its output is read; a server still
        running after `timeout` is killed, and subprocess.TimeoutExpired raised."""
        try:
            code = self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise
        self._finish()
        return code

    def stop(self, timeout: float = STOP_TIMEOUT_SECONDS) -> None:
        """SIGTERM, as Cloud Run sends; fails unless the server then exits with status 0."""
        self.process.send_signal(signal.SIGTERM)
        try:
            code = self.wait(timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(
                f"still running {timeout} s after SIGTERM\n{self.output()}"
            ) from None
        if code != 0:
            raise AssertionError(f"exit code {code} after SIGTERM, not 0\n{self.output()}")

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        self._finish()

    def _finish(self) -> None:
        for reader in self._readers:
            reader.join(_DRAIN_SECONDS)
        if self._channel is not None:
            self._channel.close()

    def __enter__(self) -> Server:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, *exc_info: object) -> None:
        # After a failure in the test, that failure is the report: the server only goes away.
        if exc_type is None:
            self.stop()
        else:
            self.kill()


def start(
    binary: str,
    *flags: str,
    env: Mapping[str, str] | None = None,
    timeout: float = STARTUP_TIMEOUT_SECONDS,
) -> Server:
    """Starts `binary` (a path, e.g. `$(rootpath :server)` passed in the test's `env`) with
    `flags` on a free port and returns it once its health says SERVING. Use it in a `with`:
    leaving the block stops it and checks its exit status."""
    server = Server([binary, "--log_format=json", *flags], env)
    try:
        server.wait_until_serving(timeout)
    except StartError as error:
        server.kill()  # then the output below holds all that the server printed
        raise StartError(f"{error}\n{server.output()}") from None
    except BaseException:
        server.kill()
        raise
    return server


def _json_object(line: str) -> dict | None:
    try:
        entry = json.loads(line)
    except ValueError:
        return None
    return entry if isinstance(entry, dict) else None
