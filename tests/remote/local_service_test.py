"""//tools/remote:local as a client of the Remote Execution API sees it, and as Ctrl-C stops it.

The real launcher, BuildGrid, PostgreSQL and buildbox worker run on a loopback port; the test
speaks REAPI to them with BuildGrid's own generated stubs: blobs in and out of the CAS, an
action run on the worker and then served from the action cache, a failing action not cached,
and the stops: SIGINT leaves no process behind, SIGKILL of the launcher takes its children
with it, a busy port and bad flags are refused.
"""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import tempfile
import time
from pathlib import Path

import grpc
from absl.testing import absltest
from buildgrid._protos.build.bazel.remote.execution.v2 import (
    remote_execution_pb2 as reapi,
)
from buildgrid._protos.build.bazel.remote.execution.v2 import (
    remote_execution_pb2_grpc as reapi_grpc,
)

LOCAL = os.environ["REMOTE_LOCAL"]
START_TIMEOUT_S = 120.0


def digest(data: bytes) -> reapi.Digest:
    return reapi.Digest(hash=hashlib.sha256(data).hexdigest(), size_bytes=len(data))


def processes_mentioning(text: str) -> list[str]:
    """Command lines of live processes that name `text` (the state directory)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if text in cmdline:
            found.append(f"{entry.name}: {cmdline}")
    return found


class Service:
    """One run of the launcher with its own state directory and a free port."""

    def __init__(self, root: Path, *flags: str) -> None:
        self.state_dir = root / "state"
        self.ready_file = root / "endpoint"
        self.output = root / "output.log"
        with self.output.open("wb") as out:
            self.process = subprocess.Popen(
                [
                    LOCAL,
                    "--port=0",
                    "--workers=1",
                    f"--state_dir={self.state_dir}",
                    f"--ready_file={self.ready_file}",
                    *flags,
                ],
                stdout=out,
                stderr=subprocess.STDOUT,
            )

    def wait_ready(self) -> str:
        deadline = time.monotonic() + START_TIMEOUT_S
        while not self.ready_file.exists():
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"not ready:\n{self.output.read_text()}")
            time.sleep(0.2)
        return self.ready_file.read_text().strip().removeprefix("grpc://")

    def log(self) -> str:
        return self.output.read_text(errors="replace")


class LocalServiceTest(absltest.TestCase):
    @classmethod
    def setUpClass(cls) -> None:
        cls.root = Path(tempfile.mkdtemp(dir=os.environ.get("TEST_TMPDIR")))
        cls.service = Service(cls.root)
        cls.address = cls.service.wait_ready()
        cls.channel = grpc.insecure_channel(cls.address)
        cls.cas = reapi_grpc.ContentAddressableStorageStub(cls.channel)
        cls.execution = reapi_grpc.ExecutionStub(cls.channel)
        cls.action_cache = reapi_grpc.ActionCacheStub(cls.channel)

    @classmethod
    def tearDownClass(cls) -> None:
        cls.channel.close()
        if cls.service.process.poll() is None:
            cls.service.process.kill()
            cls.service.process.wait()

    def upload(self, *blobs: bytes) -> None:
        response = self.cas.BatchUpdateBlobs(
            reapi.BatchUpdateBlobsRequest(
                requests=[
                    reapi.BatchUpdateBlobsRequest.Request(digest=digest(b), data=b) for b in blobs
                ]
            ),
            timeout=30,
        )
        self.assertEqual([r.status.code for r in response.responses], [0] * len(blobs))

    def action(self, script: str) -> reapi.Action:
        """An action running `sh -c script` in an empty input root, with out.txt as output."""
        command = reapi.Command(
            arguments=["/bin/sh", "-c", script],
            output_paths=["out.txt"],
        ).SerializeToString()
        empty_root = reapi.Directory().SerializeToString()
        action = reapi.Action(
            command_digest=digest(command),
            input_root_digest=digest(empty_root),
            # A fresh key per test run, so an earlier run's cached result never answers.
            salt=str(time.time_ns()).encode(),
        )
        self.upload(command, empty_root, action.SerializeToString())
        return action

    def execute(self, action: reapi.Action) -> reapi.ExecuteResponse:
        request = reapi.ExecuteRequest(
            action_digest=digest(action.SerializeToString()), skip_cache_lookup=True
        )
        for operation in self.execution.Execute(request, timeout=90):
            if operation.done:
                response = reapi.ExecuteResponse()
                operation.response.Unpack(response)
                return response
        raise AssertionError("the operation stream ended before the action was done")

    def test_blobs_round_trip(self) -> None:
        blobs = [b"", b"hello", os.urandom(100_000)]
        self.upload(*blobs)
        response = self.cas.BatchReadBlobs(
            reapi.BatchReadBlobsRequest(digests=[digest(b) for b in blobs]), timeout=30
        )
        self.assertEqual([r.data for r in response.responses], blobs)

    def test_action_runs_on_the_worker_and_is_cached(self) -> None:
        action = self.action("echo hello from the worker > out.txt")
        response = self.execute(action)
        self.assertEqual(response.status.code, 0, response.status.message)
        self.assertEqual(response.result.exit_code, 0)
        [output] = response.result.output_files
        self.assertEqual(output.path, "out.txt")
        self.assertEqual(output.digest, digest(b"hello from the worker\n"))

        cached = self.action_cache.GetActionResult(
            reapi.GetActionResultRequest(action_digest=digest(action.SerializeToString())),
            timeout=30,
        )
        self.assertEqual(cached.output_files, response.result.output_files)

    def test_failing_action_is_reported_and_not_cached(self) -> None:
        action = self.action("echo broken >&2; exit 3")
        response = self.execute(action)
        self.assertEqual(response.result.exit_code, 3)
        with self.assertRaises(grpc.RpcError) as raised:
            self.action_cache.GetActionResult(
                reapi.GetActionResultRequest(action_digest=digest(action.SerializeToString())),
                timeout=30,
            )
        self.assertEqual(raised.exception.code(), grpc.StatusCode.NOT_FOUND)

    def test_a_second_service_on_the_same_port_is_refused(self) -> None:
        port = self.address.rsplit(":", 1)[1]
        result = subprocess.run(
            [LOCAL, f"--port={port}"], capture_output=True, text=True, timeout=60
        )
        self.assertEqual(result.returncode, 2, result.stderr)
        self.assertIn(f"127.0.0.1:{port} is already in use", result.stderr)

    def test_bad_flags_are_refused(self) -> None:
        for flags in (["--workers=0"], ["--port=70000"]):
            result = subprocess.run([LOCAL, *flags], capture_output=True, text=True, timeout=60)
            self.assertEqual(result.returncode, 2, flags)
            self.assertIn("--port must be 0..65535 and --workers at least 1", result.stderr)

    def test_zz_ctrl_c_stops_every_part(self) -> None:
        """Last (zz): it stops the class's service."""
        state = str(self.service.state_dir)
        self.assertNotEqual(processes_mentioning(state), [], "nothing runs in the state dir?")
        self.service.process.send_signal(signal.SIGINT)
        self.assertEqual(self.service.process.wait(timeout=60), 0, self.service.log())
        self.assertTrue(self.service.log().rstrip().endswith("remote: stopped"))
        self.assertEqual(processes_mentioning(state), [])
        # --state_dir is the caller's: kept, with the logs of every part.
        logs = sorted(p.name for p in (self.service.state_dir / "logs").iterdir())
        self.assertEqual(
            logs,
            [
                "buildgrid.log",
                "casd.log",
                "initdb.log",
                "migrate.log",
                "postgres.log",
                "worker-1.log",
            ],
        )


class LauncherKilledTest(absltest.TestCase):
    def test_sigkill_of_the_launcher_takes_its_children(self) -> None:
        root = Path(tempfile.mkdtemp(dir=os.environ.get("TEST_TMPDIR")))
        service = Service(root)
        service.wait_ready()
        state = str(service.state_dir)
        service.process.kill()
        service.process.wait()
        deadline = time.monotonic() + 30
        while processes_mentioning(state) and time.monotonic() < deadline:
            time.sleep(0.2)
        self.assertEqual(processes_mentioning(state), [])


if __name__ == "__main__":
    absltest.main()
