"""What a test checks of a server it runs in a container: SERVING over gRPC health, and that
its process runs as Cloud Run runs it (not root, read-only root filesystem).

The image test of every service (cloud_run_image_test.py) and the kit's own image tests
(tests/deploy/image_run_test.py) ask the same questions; they read the answers here.
"""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import IO

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from bazel.tools.oci_runtime import Container

# Fast reconnects while the server starts: the default 1 s backoff would stretch the wait.
RECONNECT_OPTIONS = [
    ("grpc.initial_reconnect_backoff_ms", 10),
    ("grpc.min_reconnect_backoff_ms", 10),
    ("grpc.max_reconnect_backoff_ms", 50),
]


class NotServing(AssertionError):
    """The container exited, or health did not say SERVING in time; the message says which,
    with what the container printed on stderr."""


def wait_for_serving(
    container: Container, channel: grpc.Channel, stderr: IO[str], timeout: float
) -> None:
    """Returns at the first SERVING answer to a health Check on `channel`."""
    health = health_pb2_grpc.HealthStub(channel)
    deadline = time.monotonic() + timeout
    status = None
    while time.monotonic() < deadline:
        if container.process.poll() is not None:
            stderr.seek(0)
            raise NotServing(
                f"the container exited with {container.process.returncode}: {stderr.read()}"
            )
        try:
            status = health.Check(
                health_pb2.HealthCheckRequest(), timeout=1, wait_for_ready=True
            ).status
        except grpc.RpcError as error:
            if error.code() != grpc.StatusCode.DEADLINE_EXCEEDED:
                raise
        if status == health_pb2.HealthCheckResponse.SERVING:
            return
        time.sleep(0.005)  # NOT_SERVING: started, not yet flipped
    raise NotServing(f"not SERVING after {timeout} s (last status {status})")


def uids(pid: int) -> tuple[int, int, int]:
    """The process's real, effective and saved user ids."""
    status = Path(f"/proc/{pid}/status").read_text()
    found = re.search(r"^Uid:\s+(\d+)\s+(\d+)\s+(\d+)", status, re.MULTILINE)
    if found is None:
        raise ValueError(f"no Uid line in /proc/{pid}/status")
    real, effective, saved = (int(uid) for uid in found.groups())
    return real, effective, saved


def root_is_read_only(pid: int) -> bool:
    """Whether the process's / is mounted read-only, from its own mountinfo."""
    for line in Path(f"/proc/{pid}/mountinfo").read_text().splitlines():
        fields = line.split()
        if fields[4] == "/":
            return "ro" in fields[5].split(",")
    raise ValueError(f"no / in /proc/{pid}/mountinfo")
