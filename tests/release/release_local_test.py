"""The release end to end on the local Cloud Run (//tools/cloud_run:local): this package's
`:release` of the kit's test services (kittest, echo), images pushed to a real registry, each
revision pulled and run under runc, smoke tests and traffic through its h2c front end. A first
release of both services; a second release of kittest after someone deployed another version by
hand, its traffic steps observed at the front end (which revision each new connection to the
service's URL reached); then a no-op release of both; then a rollback of kittest, seen at the
front end too."""

from __future__ import annotations

import contextlib
import copy
import json
import os
import subprocess
import threading
import time

import grpc
from absl.testing import absltest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from bazel.tools.oci_runtime import why_runc_cannot_run
from tests.cloud_run.local_cloud_run import LocalCloudRun, host_of, scratch
from tests.deploy.registry_server import RegistryServer

RELEASE = os.environ["RELEASE"]
ROLLBACK = os.environ["ROLLBACK"]
KITTEST, ECHO = "kittest-staging", "echo-staging"
PROJECT = "my-project"
SERVING = (
    health_pb2.HealthCheckResponse.SERVING
)  # the manifests' project, so the API path's namespace


class ReleaseLocalTest(absltest.TestCase):
    @classmethod
    def setUpClass(cls) -> None:
        if reason := why_runc_cannot_run():
            raise AssertionError(f"cannot run the local Cloud Run: {reason}")
        cls.tmp = scratch()
        cls.registry = RegistryServer(cls.tmp / "registry").start()
        cls.addClassCleanup(cls.registry.stop)
        cls.local = LocalCloudRun()
        cls.addClassCleanup(cls.local.stop)
        # The key the local Cloud Run wrote for its starter: the only one its /token honours.
        cls.key_file = cls.local.key_file

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("GOOGLE_")}
        return env | {
            "GOOGLE_APPLICATION_CREDENTIALS": str(self.key_file),
            "NO_GCE_CHECK": "True",
            "BUILD_WORKING_DIRECTORY": str(self.tmp),
        }

    def release(self, *args: str) -> tuple[subprocess.CompletedProcess[str], dict]:
        env = self.env()
        command = [
            RELEASE,
            "--environment=staging",
            f"--api_endpoint={self.local.api}",
            f"--repository={self.registry.host}/kit",
            "--json",
            "--poll_interval=0.2",
            "--ready_timeout=240",
            "--smoke_timeout=30",
            *args,
        ]
        done = subprocess.run(
            command, env=env, capture_output=True, text=True, timeout=900, check=False
        )
        print(done.stderr)  # the progress lines, with their times, for the test's log
        return done, (json.loads(done.stdout) if done.stdout.strip() else {})

    def service(self, name: str) -> dict:
        code, body = self.local.call(
            "GET", f"/apis/serving.knative.dev/v1/namespaces/{PROJECT}/services/{name}"
        )
        self.assertEqual(code, 200, body)
        return body

    def revisions_reached(self, host: str) -> list[str]:
        """The revisions the front end sent connections for `host` to, in order (its lines
        name the host without the port)."""
        prefix = f"front end: {host.rpartition(':')[0]} -> "
        return [
            line[len(prefix) :] for line in self.local.log().splitlines() if line.startswith(prefix)
        ]

    def health(self, host: str, service: str = "") -> int:
        """Health.Check through the front end, with an ID token for the URL it calls."""
        options = [("grpc.default_authority", host), ("grpc.use_local_subchannel_pool", 1)]
        metadata = [("authorization", f"Bearer {self.local.id_token('http://' + host)}")]
        with grpc.insecure_channel(f"127.0.0.1:{self.local.front_end_port}", options) as channel:
            answer = health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(service=service), metadata=metadata, timeout=10
            )
        return answer.status

    def deploy_by_hand(self, name: str, revision: str) -> None:
        """Another version of `name` (one more env var) at 100%, as a hand deploy would."""
        document = copy.deepcopy(self.service(name))
        document.pop("status")
        template = document["spec"]["template"]
        template["metadata"]["name"] = revision
        container = template["spec"]["containers"][0]
        container.setdefault("env", []).append({"name": "DEPLOYED_BY", "value": "hand"})
        document["spec"]["traffic"] = [{"revisionName": revision, "percent": 100}]
        path = f"/apis/serving.knative.dev/v1/namespaces/{PROJECT}/services/{name}"
        code, body = self.local.call("PUT", path, document)
        self.assertEqual(code, 200, body)
        self.wait_serving(name, revision)

    def wait_serving(self, name: str, revision: str) -> None:
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline:
            traffic = self.service(name)["status"].get("traffic", [])
            if [(e["revisionName"], e.get("percent")) for e in traffic] == [(revision, 100)]:
                return
            time.sleep(0.2)
        raise AssertionError(f"{revision} does not serve:\n{self.local.log()}")

    def test_first_release_second_with_observed_steps_then_no_op(self) -> None:
        first, report = self.release()
        self.assertEqual(first.returncode, 0, first.stderr)
        self.assertEqual(
            {s["name"]: s["result"] for s in report["services"]},
            {KITTEST: "released", ECHO: "released"},
        )
        ours = {s["name"]: s["revision"] for s in report["services"]}
        for name in (KITTEST, ECHO):
            main = host_of(self.service(name)["status"]["url"])
            self.assertEqual(self.health(main), SERVING)  # through the front end
            self.assertEqual(set(self.revisions_reached(main)), {ours[name]})

        by_hand = f"{KITTEST}-by-hand"
        self.deploy_by_hand(KITTEST, by_hand)
        main = host_of(self.service(KITTEST)["status"]["url"])
        before = len(self.revisions_reached(main))
        stop = threading.Event()

        def keep_calling() -> None:
            while not stop.is_set():
                # A failed call still shows in the front end's lines, if it got that far.
                with contextlib.suppress(grpc.RpcError):
                    self.health(main)
                time.sleep(0.05)

        caller = threading.Thread(target=keep_calling, daemon=True)
        caller.start()
        try:
            second, report = self.release("--service=kittest", "--step_wait=4")
        finally:
            stop.set()
            caller.join(30)
        self.assertEqual(second.returncode, 0, second.stderr)
        self.assertEqual([s["result"] for s in report["services"]], ["released"])
        self.assertEqual(report["services"][0]["revision"], ours[KITTEST])
        steps = [s["name"] for s in report["services"][0]["steps"]]
        self.assertEqual(
            steps, ["push", "revision", "ready", "smoke", "traffic", "traffic", "traffic"]
        )
        reached = self.revisions_reached(main)[before:]
        # By hand only until the first step; both during the steps; ours only at the end.
        self.assertEqual(reached[0], by_hand, reached)
        self.assertIn(ours[KITTEST], reached)
        first_ours = reached.index(ours[KITTEST])
        self.assertIn(by_hand, reached[first_ours:], reached)  # 10 %, 50 %: both served
        after = len(self.revisions_reached(main))
        for _ in range(5):
            self.assertEqual(self.health(main), SERVING)
        self.assertEqual(set(self.revisions_reached(main)[after:]), {ours[KITTEST]})
        traffic = {
            e["revisionName"]: e.get("percent", 0)
            for e in self.service(KITTEST)["status"]["traffic"]
        }
        self.assertEqual(traffic[ours[KITTEST]], 100)

        third, report = self.release()
        self.assertEqual(third.returncode, 0, third.stderr)
        self.assertEqual(
            {s["name"]: s["result"] for s in report["services"]},
            {KITTEST: "no-op", ECHO: "no-op"},
        )
        self.assertIn("already serves 100%, no revision made", third.stderr)

        # Rollback: 100% back on the revision that served before the second release.
        back = subprocess.run(
            [
                ROLLBACK,
                "--environment=staging",
                "--service=kittest",
                f"--api_endpoint={self.local.api}",
                "--json",
                "--poll_interval=0.2",
            ],
            env=self.env(),
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        print(back.stderr)
        self.assertEqual(back.returncode, 0, back.stderr)
        self.assertEqual(json.loads(back.stdout)["services"][0]["result"], "rolled back")
        after = len(self.revisions_reached(main))
        for _ in range(5):
            self.assertEqual(self.health(main), SERVING)
        self.assertEqual(set(self.revisions_reached(main)[after:]), {by_hand})


if __name__ == "__main__":
    absltest.main()
