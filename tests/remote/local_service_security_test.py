"""//tools/remote:local on a shared machine: another local user gets nothing from it.

The service runs as root, as CI runs it. The attacker is `nobody`, with a copy of this test's
interpreter and gRPC in a world-readable directory (it cannot read root's home, where Bazel
keeps them). It holds no token and tries what an independent attack test found: reading a
root-only file through a digest that is a path (BatchReadBlobs, ByteStream Read), asking
FindMissingBlobs whether a path exists, running `id -u` as an action, writing the action cache,
and logging in to the service's PostgreSQL.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import grpc
from absl.testing import absltest
from buildgrid._protos.build.bazel.remote.execution.v2 import (
    remote_execution_pb2 as reapi,
)
from buildgrid._protos.build.bazel.remote.execution.v2 import (
    remote_execution_pb2_grpc as reapi_grpc,
)

from tests.remote.local_service import Service, channel_with_token

ATTACKER = Path(os.environ["ATTACKER"])
ATTACKER_USER = "nobody"
# util-linux puts it in sbin, which a test's PATH (/bin:/usr/bin:/usr/local/bin) leaves out.
RUNUSER = "/usr/sbin/runuser"
# What the attacker imports, copied from this test's own site-packages.
ATTACKER_PACKAGES = ("grpc", "google", "buildgrid", "typing_extensions.py")


def world_readable_python(into: Path) -> tuple[Path, Path]:
    """This test's interpreter and the attacker's packages, readable by any user.

    Returns the interpreter and the directory to put on PYTHONPATH.
    """
    interpreter = Path(sys.executable).resolve()
    rootfs = interpreter.parents[2]  # ROOTFS/usr/bin/python3.13
    # Debian's doc directories of some packages link to another package's, not unpacked here.
    shutil.copytree(rootfs, into / "rootfs", symlinks=False, ignore_dangling_symlinks=True)
    site = Path(grpc.__file__).resolve().parents[1]
    (into / "site").mkdir()
    for package in ATTACKER_PACKAGES:
        if (site / package).is_dir():
            shutil.copytree(site / package, into / "site" / package, symlinks=False)
        else:
            shutil.copy(site / package, into / "site" / package)
    shutil.copy(ATTACKER, into / "attacker.py")
    # Bazel keeps some files owner-executable only (the interpreter is 0744).
    for directory, _, files in os.walk(into):
        Path(directory).chmod(0o755)
        for name in files:
            path = Path(directory, name)
            path.chmod(0o755 if path.stat().st_mode & 0o100 else 0o644)
    return into / "rootfs" / interpreter.relative_to(rootfs), into / "site"


def children_of(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            # The parent's pid is the second field after the parenthesised command name.
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry.name))
    return found


def database_socket_dir(launcher: int) -> str:
    """The -k (socket directory) of the launcher's postgres child."""
    for pid in children_of(launcher):
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().decode().split("\0")
        if Path(argv[0]).name == "postgres" and "-k" in argv:
            return argv[argv.index("-k") + 1]
    raise AssertionError(f"no postgres child of {launcher}")


class AnotherLocalUserTest(absltest.TestCase):
    @classmethod
    def setUpClass(cls) -> None:
        cls.service = Service()
        # Outside root's home, where `nobody` can reach it; removed at the end.
        cls.shared = Path(tempfile.mkdtemp(prefix="remote-attacker-", dir="/tmp"))
        cls.shared.chmod(0o755)
        python, site = world_readable_python(cls.shared / "python")
        # A file only root may read: what the traversal reads if it works.
        cls.secret_dir = Path(tempfile.mkdtemp(prefix="remote-secret-", dir="/tmp"))
        cls.secret = cls.secret_dir / "secret"
        cls.secret_text = "root only " + os.urandom(8).hex()
        cls.secret.write_text(cls.secret_text)
        cls.secret.chmod(0o600)
        cls.address = cls.service.wait_ready()
        result = subprocess.run(
            [
                RUNUSER,
                "-u",
                ATTACKER_USER,
                "--",
                "env",
                f"PYTHONPATH={site}",
                "PYTHONDONTWRITEBYTECODE=1",
                str(python),
                str(cls.shared / "python" / "attacker.py"),
                cls.address,
                str(cls.secret),
                str(len(cls.secret_text)),
            ],
            capture_output=True,
            text=True,
            timeout=180,
        )
        if result.returncode != 0:
            raise AssertionError(f"the attacker failed to run:\n{result.stderr}")
        cls.report = json.loads(result.stdout)

    @classmethod
    def tearDownClass(cls) -> None:
        cls.service.remove()
        shutil.rmtree(cls.shared, ignore_errors=True)
        shutil.rmtree(cls.secret_dir, ignore_errors=True)

    def assertRefused(self, attack: str) -> None:
        self.assertEqual(
            self.report[attack]["code"], "UNAUTHENTICATED", json.dumps(self.report[attack])
        )

    def test_a_digest_that_is_a_path_reads_nothing(self) -> None:
        for attack in ("batch_read", "bytestream_read"):
            with self.subTest(attack):
                self.assertNotIn(self.secret_text, self.report[attack]["leaked"])
                self.assertRefused(attack)

    def test_find_missing_blobs_says_nothing_about_paths(self) -> None:
        self.assertFalse(self.report["find_missing"]["oracle"])
        self.assertRefused("find_missing")

    def test_another_user_runs_no_action(self) -> None:
        self.assertNotEqual(self.report["execute"]["uid"], "0")
        self.assertRefused("upload")
        self.assertRefused("execute")

    def test_another_user_cannot_write_the_action_cache(self) -> None:
        self.assertRefused("update_action_result")

    def test_another_user_cannot_log_in_to_the_database(self) -> None:
        socket_dir = database_socket_dir(self.service.process.pid)
        for role in ("buildgrid", "postgres", ATTACKER_USER):
            with self.subTest(role):
                result = subprocess.run(
                    [
                        *(RUNUSER, "-u", ATTACKER_USER, "--"),
                        *("psql", "-h", socket_dir, "-U", role, "-d", "postgres"),
                        *("-tAc", "select 'logged in as ' || current_user"),
                    ],
                    capture_output=True,
                    text=True,
                    timeout=60,
                )
                self.assertNotEqual(result.returncode, 0, result.stdout)
                self.assertNotIn("logged in as", result.stdout)

    def test_the_service_still_answers_its_owner(self) -> None:
        with channel_with_token(self.address, self.service.token()) as channel:
            stub = reapi_grpc.CapabilitiesStub(channel)
            capabilities = stub.GetCapabilities(reapi.GetCapabilitiesRequest(), timeout=30)
        self.assertTrue(capabilities.execution_capabilities.exec_enabled)


if __name__ == "__main__":
    absltest.main()
