"""Runs one revision as Cloud Run runs an instance of it: the image pulled by digest, unpacked,
started under runc with the container's env, args and command, `$PORT` and the K_* variables,
the image's non-root user and a read-only root; Ready once the manifest's startup probe passes;
SIGTERM, then SIGKILL after the grace period, when it stops. Its output goes to a log file and,
prefixed with the revision's name, to this process's stdout (Cloud Run's logs)."""

from __future__ import annotations

import random
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from bazel.tools.oci_runtime import Bundle, Container
from tools.cloud_run import conditions, registry_pull
from tools.cloud_run.images import Images

# Cloud Run's defaults for a probe field the manifest leaves out.
_PROBE_DEFAULTS = {
    "initialDelaySeconds": 0,
    "timeoutSeconds": 1,
    "periodSeconds": 10,
    "failureThreshold": 3,
}
# Cloud Run's startup probe when the manifest has none: a TCP connection to the port.
_DEFAULT_STARTUP_PROBE = {"tcpSocket": {}, "timeoutSeconds": 240, "periodSeconds": 240}
# Fast reconnects while the server starts: the default 1 s backoff would stretch each probe.
_PROBE_OPTIONS = [
    ("grpc.initial_reconnect_backoff_ms", 20),
    ("grpc.min_reconnect_backoff_ms", 20),
    ("grpc.max_reconnect_backoff_ms", 100),
]


class StartFailed(Exception):
    """The revision did not become Ready: `reason` and `message` as Cloud Run's condition."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


_EPHEMERAL_RANGE = Path("/proc/sys/net/ipv4/ip_local_port_range")
_LOWEST_PORT = 20000
_given_ports: set[int] = set()
_given_ports_lock = threading.Lock()


def free_port() -> int:
    """A port for an instance's $PORT: free on the IPv6 wildcard, dual stack (where the kit's
    servers listen), never given to another instance of this process, and below the kernel's
    ephemeral range, from which every outbound connection (probes, the front end's relays, a
    push) takes its local port: one could take the instance's before it listens."""
    ephemeral_low = int(_EPHEMERAL_RANGE.read_text().split()[0])
    low = _LOWEST_PORT if ephemeral_low > _LOWEST_PORT + 1000 else 1024
    for _ in range(200):
        port = random.randrange(low, ephemeral_low)
        with _given_ports_lock:
            if port in _given_ports:
                continue
            with socket.socket(socket.AF_INET6) as probe:
                probe.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
                try:
                    probe.bind(("::", port))
                except OSError:
                    continue
            _given_ports.add(port)
            return port
    raise OSError(f"no free port in {low}-{ephemeral_low - 1}")


def container_port(container: dict) -> int:
    ports = container.get("ports") or [{}]
    return int(ports[0].get("containerPort", 8080))


class Instance:
    """One running container of a revision; `port` is where it listens on loopback."""

    def __init__(
        self,
        service: str,
        revision: str,
        spec: dict,
        directory: Path,
        images: Images,
        stop_grace_seconds: float,
        metadata_host: str,
    ) -> None:
        self.service = service
        self.revision = revision
        self.spec = spec
        self.container_spec = spec["containers"][0]
        self.directory = directory
        self.images = images
        self.stop_grace_seconds = stop_grace_seconds
        self.metadata_host = metadata_host
        self.port = free_port()
        self.log_path = directory / "log"
        self.image_seconds = 0.0  # pulling and unpacking: near 0 once another revision did it
        self._container: Container | None = None
        self._stopped = threading.Event()

    def start(self) -> None:
        """Pulls and unpacks the image (once per digest), starts the container, then runs the
        startup probe; StartFailed when any of that fails (the container is stopped again)."""
        reference = self.container_spec["image"]
        if self.directory.exists():
            shutil.rmtree(self.directory)  # a restart: this process made it, nothing else
        self.directory.mkdir(parents=True)
        try:
            pulling = time.monotonic()
            layout, rootfs = self.images.unpacked(reference)
            self.image_seconds = time.monotonic() - pulling
            bundle = Bundle(layout, self.directory / "bundle", rootfs)
        except (registry_pull.PullError, OSError, ValueError, KeyError) as error:
            raise StartFailed(
                conditions.CONTAINER_MISSING, conditions.missing_image(reference, str(error))
            ) from None
        try:
            config = bundle.configure(
                self._environment(),
                readonly=True,
                args=self.container_spec.get("args"),
                command=self.container_spec.get("command"),
            )
        except ValueError as error:
            raise StartFailed(conditions.HEALTH_CHECK_CONTAINER_ERROR, str(error)) from None
        # This process is root: a container of uid or gid 0 would be root's on the host's
        # network and (through any mount) files. An image with no User means 0:0.
        user = config["process"]["user"]
        if user["uid"] == 0 or user["gid"] == 0:
            raise StartFailed(
                conditions.HEALTH_CHECK_CONTAINER_ERROR,
                f"Image '{reference}' runs as root (uid {user['uid']}, gid {user['gid']}): the "
                "local Cloud Run runs only non-root images (set USER uid:gid, neither 0)",
            )
        self._container = Container(
            bundle, self.directory / "runc", subprocess.PIPE, subprocess.STDOUT
        )
        process = self._container.start()
        threading.Thread(target=self._copy_output, args=(process,), daemon=True).start()
        try:
            self._probe()
        except StartFailed:
            self.stop()
            raise

    def _environment(self) -> dict[str, str]:
        environment = {}
        for entry in self.container_spec.get("env") or []:
            if "valueFrom" in entry:
                raise StartFailed(
                    "SecretsAccessCheckFailed",
                    f"Env var '{entry['name']}' refers to a secret: the local Cloud Run has no "
                    "Secret Manager",
                )
            environment[entry["name"]] = entry.get("value", "")
        # Set last: Cloud Run refuses a manifest that sets them (api.py checks PORT).
        environment |= {
            "PORT": str(self.port),
            "K_SERVICE": self.service,
            "K_REVISION": self.revision,
            "K_CONFIGURATION": self.service,
        }
        if self.metadata_host:
            # Where google-auth asks for ID tokens (metadata.py); the container shares loopback.
            environment |= {
                "GCE_METADATA_HOST": self.metadata_host,
                "GCE_METADATA_IP": self.metadata_host,
            }
        return environment

    def _copy_output(self, process: subprocess.Popen) -> None:
        with self.log_path.open("a", encoding="utf-8") as log:
            for line in process.stdout:
                log.write(line)
                log.flush()
                sys.stdout.write(f"[{self.revision}] {line}")
                sys.stdout.flush()

    def _probe_target(self, probe: dict) -> tuple[str, int]:
        """(kind, loopback port) of the probe: the container port maps to this instance's
        $PORT; any other port is probed as it is, on the shared loopback."""
        kind = "grpc" if "grpc" in probe else "tcpSocket"
        declared = probe[kind].get("port")
        serving = container_port(self.container_spec)
        if declared is None or int(declared) == serving:
            return kind, self.port
        return kind, int(declared)

    def _probe(self) -> None:
        probe = self.container_spec.get("startupProbe") or _DEFAULT_STARTUP_PROBE
        if "grpc" not in probe and "tcpSocket" not in probe:
            raise StartFailed(
                conditions.HEALTH_CHECK_CONTAINER_ERROR,
                "the local Cloud Run runs gRPC and TCP startup probes only",
            )
        settings = _PROBE_DEFAULTS | probe
        kind, port = self._probe_target(probe)
        time.sleep(settings["initialDelaySeconds"])
        detail = "no attempt"
        for _ in range(int(settings["failureThreshold"])):
            started = time.monotonic()
            try:
                detail = self._attempt(kind, port, probe, float(settings["timeoutSeconds"]))
            except _Exited as exited:
                raise StartFailed(
                    conditions.HEALTH_CHECK_CONTAINER_ERROR,
                    conditions.exited(container_port(self.container_spec), exited.code),
                ) from None
            if detail is None:
                return
            # Cloud Run probes every periodSeconds, from one attempt's start to the next's.
            time.sleep(max(0.0, float(settings["periodSeconds"]) - (time.monotonic() - started)))
        raise StartFailed(
            conditions.HEALTH_CHECK_CONTAINER_ERROR, conditions.probe_failed(port, detail)
        )

    def _attempt(self, kind: str, port: int, probe: dict, timeout: float) -> str | None:
        """None when the probe passed, else what it saw; _Exited when the container is gone."""
        deadline = time.monotonic() + timeout
        detail = "timed out"
        while time.monotonic() < deadline:
            if self._container.process.poll() is not None:
                raise _Exited(self._container.process.returncode)
            left = max(0.05, deadline - time.monotonic())
            if kind == "tcpSocket":
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=left).close()
                    return None
                except OSError as error:
                    detail = str(error)
                    time.sleep(0.05)
                    continue
            service = probe["grpc"].get("service", "")
            with grpc.insecure_channel(f"127.0.0.1:{port}", _PROBE_OPTIONS) as channel:
                try:
                    status = (
                        health_pb2_grpc.HealthStub(channel)
                        .Check(
                            health_pb2.HealthCheckRequest(service=service),
                            timeout=min(left, 0.5),
                            wait_for_ready=True,
                        )
                        .status
                    )
                except grpc.RpcError as error:
                    detail = f"{error.code().name}"
                    continue
            if status == health_pb2.HealthCheckResponse.SERVING:
                return None
            detail = health_pb2.HealthCheckResponse.ServingStatus.Name(status)
            time.sleep(0.05)
        return detail

    def exit_code(self) -> int | None:
        """The container's exit status once it exited, else None."""
        if self._container is None or self._container.process is None:
            return None
        return self._container.process.poll()

    def stop(self) -> None:
        """SIGTERM, then SIGKILL after the grace period (Cloud Run's 10 s); then deleted."""
        if self._container is None or self._stopped.is_set():
            return
        self._stop_container()
        with _given_ports_lock:
            _given_ports.discard(self.port)

    def _stop_container(self) -> None:
        self._stopped.set()
        process = self._container.process
        if process.poll() is None:
            try:
                self._container.kill(signal.SIGTERM)
                process.wait(self.stop_grace_seconds)
            except (subprocess.CalledProcessError, subprocess.TimeoutExpired):
                pass
        self._container.close()


class _Exited(Exception):
    def __init__(self, code: int) -> None:
        super().__init__(code)
        self.code = code
