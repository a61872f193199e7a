"""The kit's test services' images run under a real OCI runtime
(//tests/services/kittest:kittest_image, //tests/deploy/echo_service:echo_image): layers
unpacked into a bundle, run by `runc` with a runtime config made from the image config (uid
65532, read-only root filesystem, the host's network, PORT set), health SERVING, a real RPC of
that service from outside, SIGTERM by `runc kill`, exit 0, and JSON log lines on stdout; and the
manifest's auth args enforced by the server in the image. Where runc cannot run (not root, no
runc), every test fails saying why.

Every cloud_run_service's own image test (bazel/tools/cloud_run_image_test.py) runs its image
to SERVING, lists its services by reflection and stops it; what it leaves to this test is a
call answered in the image, the exact uid, the logs, and the manifest's args."""

from __future__ import annotations

import base64
import contextlib
import json
import os
import signal
import socket
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import grpc
import yaml
from absl.testing import absltest
from echo.v1 import echo_pb2, echo_pb2_grpc
from kittest.v1 import test_service_pb2, test_service_pb2_grpc
from pong.v1 import pong_pb2

from bazel.tools.container_checks import (
    RECONNECT_OPTIONS,
    root_is_read_only,
    uids,
    wait_for_serving,
)
from bazel.tools.oci_layout import Layout, image_outputs
from bazel.tools.oci_runtime import (
    Bundle,
    Container,
    RuncUnavailable,
    enter_root_mount,
    why_runc_cannot_run,
)

NONROOT = "65532"
# //tests/deploy:auth_manifest's one allowed invoker.
ALLOWED_INVOKER = "caller@kit-test-project.iam.gserviceaccount.com"
SERVING_TIMEOUT_SECONDS = 30


def unary(channel: grpc.Channel) -> str:
    response = test_service_pb2_grpc.TestServiceStub(channel).Unary(
        test_service_pb2.UnaryRequest(message="from outside"), timeout=10
    )
    return response.message


def echo(channel: grpc.Channel) -> str:
    request = echo_pb2.EchoRequest(pong=pong_pb2.Pong(message="from outside"))
    return echo_pb2_grpc.EchoServiceStub(channel).Echo(request, timeout=10).message


def unsigned_token(email: str) -> str:
    """A JWT as Cloud Run hands it on after its IAM check verified it: claims, no signature."""

    def part(value: dict) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()

    return f"{part({'alg': 'RS256'})}.{part({'email': email})}.SIGNATURE_REMOVED_BY_GOOGLE"


def scratch_dir() -> Path:
    return Path(tempfile.mkdtemp(dir=os.environ.get("TEST_TMPDIR")))


class ImageRunTest(absltest.TestCase):
    unavailable: str | None = None

    @classmethod
    def setUpClass(cls) -> None:
        cls.unavailable = why_runc_cannot_run()
        if cls.unavailable is None:
            try:
                # Before any gRPC thread: unshare needs a single-threaded process.
                enter_root_mount(scratch_dir())
            except (RuncUnavailable, OSError) as error:
                cls.unavailable = str(error)

    def test_kittest_image_serves_and_stops_cleanly(self) -> None:
        self.run_image("IMAGE", "kittest", unary, "/kittest.v1.TestService/Unary", "from outside")

    def test_echo_image_serves_and_stops_cleanly(self) -> None:
        self.run_image("ECHO_IMAGE", "echo", echo, "/echo.v1.EchoService/Echo", "from outside")

    def run_image(
        self,
        env_var: str,
        name: str,
        call: Callable[[grpc.Channel], str],
        method: str,
        expected: str,
    ) -> None:
        with self.serving(env_var) as (container, channel, port, outputs):
            self.assertEqual(call(channel), expected)
            state = container.state()
            self.assertIsNotNone(state, "runc state: no container while it serves")
            self.assertEqual(state["status"], "running")
            # As the runtime started it: uid 65532, on a read-only root filesystem.
            self.assertEqual(uids(state["pid"]), (int(NONROOT),) * 3, "must run as nonroot")
            self.assertTrue(root_is_read_only(state["pid"]), "the root must be read-only")
        returncode, output, errors = outputs
        self.assertEqual(returncode, 0, f"exit status after SIGTERM; stderr:\n{errors}")
        self.assertNotIn("Traceback", errors)
        self.check_logs(output, name, port, method)

    def test_manifest_auth_flags_reach_the_server(self) -> None:
        """The container runs with its manifest's args (//tests/deploy:auth_manifest:
        auth_mode cloud-run, one allowed invoker), as Cloud Run runs them after the image's
        entrypoint: the server in the image enforces them."""
        document = yaml.safe_load(Path(os.environ["AUTH_MANIFEST"]).read_text())
        args = document["spec"]["template"]["spec"]["containers"][0]["args"]
        self.assertIn("--auth_mode=cloud-run", args)
        stub_of = test_service_pb2_grpc.TestServiceStub
        request = test_service_pb2.UnaryRequest(message="who")
        with self.serving("IMAGE", args) as (_, channel, _, outputs):
            for token, code in (
                (None, grpc.StatusCode.UNAUTHENTICATED),
                (unsigned_token("someone@example.com"), grpc.StatusCode.PERMISSION_DENIED),
                (unsigned_token(ALLOWED_INVOKER), grpc.StatusCode.OK),
            ):
                metadata = [("x-serverless-authorization", f"Bearer {token}")] if token else []
                try:
                    stub_of(channel).Unary(request, metadata=metadata, timeout=10)
                    got = grpc.StatusCode.OK
                except grpc.RpcError as error:
                    got = error.code()
                self.assertEqual(got, code, token)
        returncode, _, errors = outputs
        self.assertEqual(returncode, 0, errors)

    @contextlib.contextmanager
    def serving(
        self, env_var: str, args: list[str] | None = None
    ) -> Iterator[tuple[Container, grpc.Channel, int, list]]:
        """Runs the image until SERVING, yields (container, channel, port, outputs), then
        stops it with SIGTERM; `outputs` is then [exit status, stdout, stderr]."""
        if self.unavailable:
            self.fail(f"cannot run the image with runc: {self.unavailable}")
        bundle = Bundle(Layout(image_outputs(env_var)[0]), scratch_dir() / "bundle")
        port = free_port()
        config = bundle.configure({"PORT": str(port)}, args=args)
        self.assertEqual(config["process"]["user"]["uid"], int(NONROOT))
        logs = scratch_dir()
        outputs: list = []
        with (
            open(logs / "stdout", "w+", encoding="utf-8") as stdout,
            open(logs / "stderr", "w+", encoding="utf-8") as stderr,
            Container(bundle, scratch_dir(), stdout, stderr) as container,
        ):
            with grpc.insecure_channel(f"127.0.0.1:{port}", RECONNECT_OPTIONS) as channel:
                started = time.monotonic()
                container.start()
                wait_for_serving(container, channel, stderr, SERVING_TIMEOUT_SECONDS)
                print(
                    f"{env_var}: runc run to SERVING: {(time.monotonic() - started) * 1000:.0f} ms"
                )
                yield container, channel, port, outputs
            container.kill(signal.SIGTERM)
            returncode = container.process.wait(30)
            stderr.seek(0)
            stdout.seek(0)
            outputs += [returncode, stdout.read(), stderr.read()]

    def check_logs(self, output: str, name: str, port: int, method: str) -> None:
        """Every stdout line is a JSON object for Cloud Logging: the start, the call made, the
        stop."""
        entries = []
        for line in output.splitlines():
            entry = json.loads(line)  # a line that is not JSON fails here
            self.assertIsInstance(entry, dict, line)
            self.assertIn(entry.get("severity"), ("DEBUG", "INFO", "WARNING", "ERROR"), line)
            entries.append(entry)
        messages = [entry["message"] for entry in entries]
        self.assertIn(f"{name} listening on [::]:{port}", messages)
        self.assertEqual(messages[-1], "stopped")
        self.assertIn(f"{method} OK", messages)
        self.assertIn(
            {"method": method, "code": "OK"},
            [{"method": e.get("method"), "code": e.get("code")} for e in entries],
        )


def free_port() -> int:
    """A port that was free a moment ago, for the server to bind."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


if __name__ == "__main__":
    absltest.main()
