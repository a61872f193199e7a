"""Each service's image runs (//deploy:ping_image, //deploy:route_guide_image): its layers
unpacked into a root filesystem, its entrypoint started there as uid 65532 (chroot and setuid,
as a runtime would; no Docker), health SERVING, a real RPC of that service from outside,
SIGTERM, exit 0."""

from __future__ import annotations

import os
import re
import signal
import socket
import stat
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import grpc
from absl.testing import absltest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from ping.v1 import ping_pb2, ping_pb2_grpc
from routeguide.v1 import route_guide_pb2, route_guide_pb2_grpc

from tests.deploy.oci_layout import Layout, image_outputs

DEVICES = ("null", "zero", "random", "urandom")


def ping(channel: grpc.Channel) -> str:
    pong = ping_pb2_grpc.PingServiceStub(channel).Send(
        ping_pb2.Request(message="from outside"), timeout=10
    )
    return pong.pong.message


def get_feature(channel: grpc.Channel) -> str:
    point = route_guide_pb2.Point(latitude=409146138, longitude=-746188906)
    feature = route_guide_pb2_grpc.RouteGuideStub(channel).GetFeature(point, timeout=10)
    return f"{feature.location.latitude},{feature.location.longitude}"


class ImageRunTest(absltest.TestCase):
    def test_ping_image_serves_and_stops_cleanly(self) -> None:
        self.run_image("IMAGE", ping, "from outside")

    def test_route_guide_image_serves_and_stops_cleanly(self) -> None:
        self.run_image("ROUTE_GUIDE_IMAGE", get_feature, "409146138,-746188906")

    def run_image(self, env_var: str, call: Callable[[grpc.Channel], str], expected: str) -> None:
        if os.geteuid() != 0:
            self.fail(
                "this test unpacks and chroots into the image: it must run as root "
                "(./bazelw runs Bazel as root)"
            )
        layout = Layout(image_outputs(env_var)[0])
        rootfs = Path(tempfile.mkdtemp(dir=os.environ.get("TEST_TMPDIR")))
        rootfs.chmod(0o755)  # it becomes /, which everyone must be able to enter
        layout.unpack(rootfs)
        (rootfs / "dev").mkdir(exist_ok=True)
        for device in DEVICES:  # what a container runtime provides
            source = os.stat(f"/dev/{device}")
            os.mknod(rootfs / "dev" / device, stat.S_IFCHR | 0o666, source.st_rdev)
        config = layout.config["config"]
        uid, gid = (int(part) for part in config["User"].split(":"))

        def enter_image() -> None:  # in the child, before exec: what a runtime does
            os.chroot(rootfs)
            os.chdir(config.get("WorkingDir") or "/")
            os.setgroups([])
            os.setgid(gid)
            os.setuid(uid)

        port = free_port()
        env = {**dict(entry.split("=", 1) for entry in config["Env"]), "PORT": str(port)}
        started = time.monotonic()
        process = subprocess.Popen(
            config["Entrypoint"],
            env=env,
            preexec_fn=enter_image,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
                health = health_pb2_grpc.HealthStub(channel)
                status = health.Check(
                    health_pb2.HealthCheckRequest(), timeout=30, wait_for_ready=True
                )
                serving_after = time.monotonic() - started
                self.assertEqual(status.status, health_pb2.HealthCheckResponse.SERVING)
                self.assertEqual(call(channel), expected)
            uids = re.search(
                r"^Uid:\s+(\d+)", Path(f"/proc/{process.pid}/status").read_text(), re.M
            )
            self.assertEqual(uids[1], "65532", "the server must run as the nonroot user")
            process.send_signal(signal.SIGTERM)
            stdout, stderr = process.communicate(timeout=30)
        finally:
            if process.poll() is None:
                process.kill()
        self.assertEqual(process.returncode, 0, stderr)
        self.assertIn('"message": "stopped"', stdout)
        print(
            f"{env_var}: process start to SERVING inside the image: {serving_after * 1000:.0f} ms"
        )
        self.assertNotRegex(stderr, re.compile("Traceback"))


def free_port() -> int:
    """A port that was free a moment ago, for the server to bind."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


if __name__ == "__main__":
    absltest.main()
