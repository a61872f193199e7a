"""`bazel run //deploy:local` end to end: every service of //deploy released by the release
tool to a local Cloud Run from a local registry, each service's URL printed, the services
answering through the front end at those URLs, and everything stopped by one SIGTERM."""

from __future__ import annotations

import fcntl
import json
import os
import re
import subprocess
import tempfile
import time
import urllib.parse
import urllib.request
from pathlib import Path

import grpc
from absl.testing import absltest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from ping.v1 import ping_pb2, ping_pb2_grpc

from bazel.tools.oci_runtime import why_runc_cannot_run
from tests.cloud_run.local_cloud_run import JWT_BEARER, LocalCloudRun, scratch

URL_LINE = re.compile(r"^local: (\S+) http://(\S+):(\d+)$", re.MULTILINE)
KEY_LINE = re.compile(r"GOOGLE_APPLICATION_CREDENTIALS=(\S+),")
# The release's line for each service it released: "ping (ping-local): traffic: 100% ...".
RELEASED_LINE = re.compile(r"\S+ \(([a-z0-9-]+)\): traffic: 100%")
# The samples this test calls; a service added with tools/new_service is released and checked
# with them, without an edit here.
SAMPLES = {"ping-local", "route-guide-local"}
# deploy/environments/local.json names the relay's upstream at the front end's default port, so
# this test uses it: it fails, saying so, while a `bazel run //deploy:local` holds the port.
FRONT_END_PORT = 8181
RELEASE_TIMEOUT_SECONDS = 300


def id_token(key: dict, audience: str) -> str:
    """An ID token for `audience` from the key's token_uri, as google-auth gets one."""
    assertion = LocalCloudRun.assertion(key, target_audience=audience)
    form = urllib.parse.urlencode({"grant_type": JWT_BEARER, "assertion": assertion}).encode()
    with urllib.request.urlopen(key["token_uri"], data=form, timeout=30) as response:
        return json.loads(response.read())["id_token"]


class DeployLocalTest(absltest.TestCase):
    def test_every_service_released_and_serving(self) -> None:
        if reason := why_runc_cannot_run():
            self.fail(f"cannot run the local Cloud Run: {reason}")
        # One run at a time on this machine (--runs_per_test): each needs the fixed port.
        lock_path = Path(tempfile.gettempdir(), f"kit-deploy-local-test-{FRONT_END_PORT}.lock")
        fcntl.flock(self.enterContext(lock_path.open("w")), fcntl.LOCK_EX)
        log_path = scratch() / "local.log"
        state = scratch() / "state"
        with log_path.open("w") as log:
            process = subprocess.Popen(
                [
                    os.path.abspath(os.environ["DEPLOY_LOCAL"]),
                    *os.environ["DEPLOY_LOCAL_ARGS"].split(),
                    "--api_port=0",
                    f"--front_end_port={FRONT_END_PORT}",
                    f"--state_dir={state}",
                ],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        self.addCleanup(process.kill)
        deadline = time.monotonic() + RELEASE_TIMEOUT_SECONDS
        # The token line comes after the URLs.
        while not KEY_LINE.search(log_path.read_text()):
            if process.poll() is not None or time.monotonic() > deadline:
                self.fail(f"no URLs (exit {process.poll()}):\n{log_path.read_text()}")
            time.sleep(0.2)
        output = log_path.read_text()
        urls = {name: (host, int(port)) for name, host, port in URL_LINE.findall(output)}
        released = set(RELEASED_LINE.findall(output))
        self.assertLessEqual(SAMPLES, released, output)
        self.assertEqual(set(urls), released, output)
        key = json.loads(Path(KEY_LINE.search(output).group(1)).read_text())
        for name, (host, port) in urls.items():
            self.assertEqual(host, f"{name}.my-project.localhost")
            options = [("grpc.default_authority", f"{host}:{port}")]
            with grpc.insecure_channel(f"127.0.0.1:{port}", options) as channel:
                health = health_pb2_grpc.HealthStub(channel)
                with self.assertRaises(grpc.RpcError) as raised:  # private, as on Cloud Run
                    health.Check(health_pb2.HealthCheckRequest(), timeout=10)
                self.assertEqual(raised.exception.code(), grpc.StatusCode.PERMISSION_DENIED)
                token = id_token(key, f"http://{host}:{port}")
                status = health.Check(
                    health_pb2.HealthCheckRequest(),
                    metadata=[("authorization", f"Bearer {token}")],
                    timeout=10,
                )
            self.assertEqual(status.status, health_pb2.HealthCheckResponse.SERVING, name)
        # The relay's upstream call goes through the front end too, with the ID token
        # google-auth in ping's container got from the metadata endpoint.
        host, port = urls["ping-local"]
        options = [("grpc.default_authority", f"{host}:{port}")]
        with grpc.insecure_channel(f"127.0.0.1:{port}", options) as channel:
            relayed = ping_pb2_grpc.PingServiceStub(channel).SendUpstream(
                ping_pb2.Request(message="through the front end twice"),
                metadata=[("authorization", f"Bearer {id_token(key, f'http://{host}:{port}')}")],
                timeout=30,
            )
        self.assertEqual(relayed.pong.message, "through the front end twice (relayed)")
        self.assertNotIn(f"front end: {host}: 401", log_path.read_text())
        process.terminate()
        self.assertEqual(process.wait(120), 0, log_path.read_text())
        self.assertIn("local Cloud Run: stopped", log_path.read_text())
        self.assertTrue(state.exists())  # --state_dir is kept


if __name__ == "__main__":
    absltest.main()
