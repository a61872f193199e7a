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

    with serving.start(os.environ["SERVER"]) as server:
        stub = greeter_pb2_grpc.GreeterStub(server.channel)
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Mapping
from typing import IO

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

STARTUP_TIMEOUT_SECONDS = 30.0
# Past the runtime's default grace after SIGTERM (8 s), with room for a busy machine.
STOP_TIMEOUT_SECONDS = 30.0
LOG_TIMEOUT_SECONDS = 10.0
# A reader thread left waiting on a pipe that a child of the server still holds open.
_DRAIN_SECONDS = 5.0
# The runtime's startup line: "NAME listening on [::]:PORT", with the port as a field.
_LISTENING = "listening on"
_PORT_FIELD = "port"


class StartError(RuntimeError):
    """The server exited, or was not SERVING in time; from `start()`, the message holds all
    that the server printed."""


class Server:
    """A server binary started by `start()`: `channel` to it, its `logs()`, `stop()`."""

    def __init__(self, binary: str, flags: tuple[str, ...], env: Mapping[str, str]) -> None:
        self.process = subprocess.Popen(
            [binary, "--log_format=json", *flags],
            env={**os.environ, "PORT": "0", **env},
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            errors="backslashreplace",  # a stray byte must not stop a reader
        )
        self.port: int | None = None
        self._channel: grpc.Channel | None = None
        self._lines: list[str] = []
        self._stderr_lines: list[str] = []
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
    def channel(self) -> grpc.Channel:
        """A plaintext channel to the server, as Cloud Run's front end talks to it (h2c)."""
        if self._channel is None:
            raise StartError("the server has not started")
        return self._channel

    def _read_stdout(self, stream: IO[str]) -> None:
        with stream:
            for line in stream:
                with self._changed:
                    self._lines.append(line.rstrip("\n"))
                    if self.port is None:
                        self.port = _listening_port(line)
                    self._changed.notify_all()
        with self._changed:
            self._stdout_closed = True
            self._changed.notify_all()
            if self._watch is not None:
                self._watch.cancel()  # a start waiting for SERVING fails now, not at its timeout

    def _read_stderr(self, stream: IO[str]) -> None:
        with stream:
            for line in stream:
                with self._changed:
                    self._stderr_lines.append(line.rstrip("\n"))

    def wait_until_serving(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        with self._changed:
            self._changed.wait_for(lambda: self.port is not None or self._stdout_closed, timeout)
            if self.port is None:
                raise StartError("the server printed no startup line")
        self._channel = grpc.insecure_channel(f"localhost:{self.port}")
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
            stdout, stderr = "\n".join(self._lines), "\n".join(self._stderr_lines)
        return f"exit code {self.process.poll()}\n--- stdout:\n{stdout}\n--- stderr:\n{stderr}"

    def logs(self) -> list[dict]:
        """The JSON log lines printed so far."""
        with self._changed:
            return [entry for entry in map(_json_object, self._lines) if entry is not None]

    def wait_for_log(
        self, predicate: Callable[[dict], bool], timeout: float = LOG_TIMEOUT_SECONDS
    ) -> dict:
        """The first JSON log line that matches, waiting until the server prints it (a log
        line is written shortly after the call it is about returns)."""

        def found() -> list[dict]:
            return [entry for entry in self.logs() if predicate(entry)]

        with self._changed:
            self._changed.wait_for(lambda: found() or self._stdout_closed, timeout)
        matching = found()
        if not matching:
            raise AssertionError(f"no matching log line in {timeout} s\n{self.output()}")
        return matching[0]

    def stop(self, timeout: float = STOP_TIMEOUT_SECONDS) -> None:
        """SIGTERM, as Cloud Run sends; fails unless the server then exits with status 0."""
        self.process.send_signal(signal.SIGTERM)
        try:
            code = self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError(
                f"still running {timeout} s after SIGTERM\n{self.output()}"
            ) from None
        self._finish()
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
    server = Server(binary, flags, env or {})
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


def _listening_port(line: str) -> int | None:
    entry = _json_object(line)
    if entry is None or _LISTENING not in str(entry.get("message", "")):
        return None
    port = entry.get(_PORT_FIELD)
    return port if isinstance(port, int) else None
