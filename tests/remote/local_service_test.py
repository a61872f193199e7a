"""//tools/remote:local as a client of the Remote Execution API sees it, and as Ctrl-C stops it.

The real launcher, BuildGrid, PostgreSQL and buildbox worker run on a loopback port; the test
speaks REAPI to them with BuildGrid's own generated stubs and the client token the launcher
wrote: blobs in and out of the CAS, an action run on the worker (not as root) and then served
from the action cache, a failing action not cached, digests that are not hex refused, calls
without a token or with the workers' token refused, and the stops: SIGINT leaves no process
behind, SIGKILL of the launcher takes its children and its run directory with it, a busy port
and bad flags are refused.
"""

from __future__ import annotations

import os
import pwd
import signal
import subprocess
import time

import grpc
import jwt
from absl.testing import absltest
from buildgrid._protos.build.bazel.remote.execution.v2 import (
    remote_execution_pb2 as reapi,
)
from buildgrid._protos.build.bazel.remote.execution.v2 import (
    remote_execution_pb2_grpc as reapi_grpc,
)
from buildgrid._protos.google.bytestream import bytestream_pb2, bytestream_pb2_grpc

from tests.remote.local_service import (
    LOCAL,
    Service,
    channel_with_token,
    digest,
    processes_mentioning,
)

# As root (CI, ./bazelw), actions run as this user, never as root.
WORKER_USER = "buildbox"


def status_of(call, *args, **kwargs) -> grpc.StatusCode:
    try:
        call(*args, **kwargs)
    except grpc.RpcError as error:
        return error.code()
    return grpc.StatusCode.OK


class LocalServiceTest(absltest.TestCase):
    @classmethod
    def setUpClass(cls) -> None:
        cls.service = Service()
        cls.address = cls.service.wait_ready()
        cls.channel = channel_with_token(cls.address, cls.service.token())
        cls.cas = reapi_grpc.ContentAddressableStorageStub(cls.channel)
        cls.execution = reapi_grpc.ExecutionStub(cls.channel)
        cls.action_cache = reapi_grpc.ActionCacheStub(cls.channel)

    @classmethod
    def tearDownClass(cls) -> None:
        cls.channel.close()
        cls.service.remove()

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

    def test_actions_do_not_run_as_root(self) -> None:
        action = self.action("id -u > out.txt")
        response = self.execute(action)
        [output] = response.result.output_files
        blob = self.cas.BatchReadBlobs(
            reapi.BatchReadBlobsRequest(digests=[output.digest]), timeout=30
        )
        uid = int(blob.responses[0].data)
        expected = pwd.getpwnam(WORKER_USER).pw_uid if os.geteuid() == 0 else os.geteuid()
        self.assertEqual(uid, expected)
        self.assertNotEqual(uid, 0)

    def test_a_digest_that_is_not_hex_is_invalid_argument(self) -> None:
        # 64 characters, as BuildGrid checks, that its disk storage would join into /etc/passwd.
        path = "/etc/passwd"
        traversal = reapi.Digest(hash=".." + "/" * (62 - len(path)) + path, size_bytes=10)
        upper = reapi.Digest(hash=digest(b"hello").hash.upper(), size_bytes=5)
        bytestream = bytestream_pb2_grpc.ByteStreamStub(self.channel)
        calls = {
            "BatchReadBlobs": lambda d: self.cas.BatchReadBlobs(
                reapi.BatchReadBlobsRequest(digests=[d]), timeout=30
            ),
            "FindMissingBlobs": lambda d: self.cas.FindMissingBlobs(
                reapi.FindMissingBlobsRequest(blob_digests=[d]), timeout=30
            ),
            "ByteStream.Read": lambda d: list(
                bytestream.Read(
                    bytestream_pb2.ReadRequest(resource_name=f"blobs/{d.hash}/{d.size_bytes}"),
                    timeout=30,
                )
            ),
        }
        for bad in (traversal, upper):
            for name, call in calls.items():
                with self.subTest(call=name, hash=bad.hash):
                    self.assertEqual(status_of(call, bad), grpc.StatusCode.INVALID_ARGUMENT)
            # A batch upload answers blob by blob.
            with self.subTest(call="BatchUpdateBlobs", hash=bad.hash):
                response = self.cas.BatchUpdateBlobs(
                    reapi.BatchUpdateBlobsRequest(
                        requests=[reapi.BatchUpdateBlobsRequest.Request(digest=bad, data=b"x" * 5)]
                    ),
                    timeout=30,
                )
                [status] = [r.status for r in response.responses]
                self.assertEqual(status.code, grpc.StatusCode.INVALID_ARGUMENT.value[0])
        # Still serving: a good digest reads what was written.
        self.upload(b"hello")
        response = self.cas.BatchReadBlobs(
            reapi.BatchReadBlobsRequest(digests=[digest(b"hello")]), timeout=30
        )
        self.assertEqual(response.responses[0].data, b"hello")

    def test_a_call_without_a_token_is_refused(self) -> None:
        for token in (None, "not-a-jwt"):
            with self.subTest(token=token):
                metadata = [("authorization", f"Bearer {token}")] if token else []
                with grpc.insecure_channel(self.address) as bare:
                    stub = reapi_grpc.CapabilitiesStub(bare)
                    code = status_of(
                        stub.GetCapabilities,
                        reapi.GetCapabilitiesRequest(),
                        timeout=30,
                        metadata=metadata,
                    )
                self.assertEqual(code, grpc.StatusCode.UNAUTHENTICATED)

    def test_the_workers_token_cannot_run_actions_or_write_the_cache(self) -> None:
        worker = jwt.encode(
            {"sub": "worker", "exp": int(time.time()) + 600}, self.service.secret(), "HS256"
        )
        with channel_with_token(self.address, worker) as channel:
            # What a worker does is allowed ...
            reapi_grpc.CapabilitiesStub(channel).GetCapabilities(
                reapi.GetCapabilitiesRequest(), timeout=30
            )
            # ... what only a client does is not.
            with self.assertRaises(grpc.RpcError) as raised:
                reapi_grpc.ActionCacheStub(channel).UpdateActionResult(
                    reapi.UpdateActionResultRequest(
                        action_digest=digest(b"an action"), action_result=reapi.ActionResult()
                    ),
                    timeout=30,
                )
            self.assertEqual(raised.exception.code(), grpc.StatusCode.UNAUTHENTICATED)

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
        # The client token stays where Bazel's credential helper reads it, the owner's only.
        self.assertEqual((self.service.token_dir / "token").stat().st_mode & 0o777, 0o600)
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
    def test_sigkill_of_the_launcher_takes_its_children_and_its_run_directory(self) -> None:
        service = Service()
        self.addCleanup(service.remove)
        service.wait_ready()
        state = str(service.state_dir)
        run_dir = (service.state_dir / "run").readlink()
        self.assertTrue(run_dir.is_dir(), run_dir)
        service.kill()
        deadline = time.monotonic() + 30
        while (processes_mentioning(state) or run_dir.exists()) and time.monotonic() < deadline:
            time.sleep(0.2)
        self.assertEqual(processes_mentioning(state), [])
        # The copy of BuildGrid's runfiles in it is hundreds of MB; none may be left in /tmp.
        self.assertFalse(run_dir.exists(), f"{run_dir} outlived the launcher")


if __name__ == "__main__":
    absltest.main()
