"""What the release tests share: a fake Google (ADC key file, access and ID tokens), a real
registry the release pushes to, a real server of the kit's test service as every revision's
gRPC target, a fresh fake Admin API per test, and a way to run this package's `:release` and
`:rollback` (of the kit's test services, kittest and echo) as the processes `bazel run` starts."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import tempfile
from pathlib import Path

from absl.testing import absltest

from tests.deploy.registry_server import RegistryServer
from tests.e2e.fake_google import FakeGoogle
from tests.e2e.processes import KITTEST_SERVER, Server
from tests.release.fake_run_api import FakeRunApi

RELEASE = os.environ["RELEASE"]
ROLLBACK = os.environ["ROLLBACK"]
# Quick steps for tests; the defaults are for Cloud Run. The smoke calls keep a margin: on a
# loaded machine (load 15 on 2 cores) a server took over 5 s to answer one.
FAST = ["--poll_interval=0.05", "--step_wait=0", "--ready_timeout=3", "--smoke_timeout=20"]


def closed_port_url() -> str:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{probe.getsockname()[1]}"


class Run:
    def __init__(self, done: subprocess.CompletedProcess[str]) -> None:
        self.returncode = done.returncode
        self.stdout = done.stdout
        self.stderr = done.stderr

    def report(self) -> dict:
        return json.loads(self.stdout)

    def results(self) -> dict[str, str]:
        return {s["name"]: s["result"] for s in self.report()["services"]}


class ReleaseTestCase(absltest.TestCase):
    @classmethod
    def setUpClass(cls) -> None:
        super().setUpClass()
        cls.tmp = Path(tempfile.mkdtemp(dir=os.environ.get("TEST_TMPDIR")))
        cls.google = FakeGoogle()
        cls.addClassCleanup(cls.google.close)
        cls.key_file = cls.google.service_account_file(
            cls.tmp, "deployer@kit-test.iam.gserviceaccount.com"
        )
        cls.registry = RegistryServer(cls.tmp / "registry").start()
        cls.addClassCleanup(cls.registry.stop)
        cls.server = Server(binary_var=KITTEST_SERVER)
        cls.addClassCleanup(cls.server.stop)
        cls.backend = f"http://127.0.0.1:{cls.server.port}"

    def setUp(self) -> None:
        super().setUp()
        self.api = FakeRunApi(self.google.access_token, self.backend)
        self.addCleanup(self.api.close)

    def env(self, **extra: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("GOOGLE_")}
        return {
            **env,
            "GOOGLE_APPLICATION_CREDENTIALS": str(self.key_file),
            "NO_GCE_CHECK": "True",  # never wait for a metadata server that is not there
            "BUILD_WORKING_DIRECTORY": str(self.tmp),
            **extra,
        }

    def run_tool(
        self, tool: str, *args: str, env: dict[str, str] | None = None, as_json: bool = True
    ) -> Run:
        command = [tool, "--environment=staging", f"--api_endpoint={self.api.url}", *FAST, *args]
        if as_json:
            command.append("--json")
        if tool == RELEASE:
            command.append(f"--repository={self.registry.host}/kit")
        done = subprocess.run(
            command, env=env or self.env(), capture_output=True, text=True, timeout=300, check=False
        )
        return Run(done)

    def release(self, *args: str, env: dict[str, str] | None = None, as_json: bool = True) -> Run:
        return self.run_tool(RELEASE, *args, env=env, as_json=as_json)

    def rollback(self, *args: str) -> Run:
        return self.run_tool(ROLLBACK, *args)

    def serving(self, name: str) -> dict[str, int]:
        status = self.api.services[name]["status"]["traffic"]
        return {e["revisionName"]: e["percent"] for e in status if e.get("percent")}

    def assert_server_answers(self) -> None:
        """The gRPC target is still up: what failed was the release's doing, not a dead server."""
        self.assertIsNone(self.server.process.poll(), self.server.output())
