"""//tools/remote:local on a shared machine: another local user gets nothing from it.

The service runs as root, as CI runs it. The attacker is `nobody`, with a copy of this test's
interpreter and gRPC in a world-readable directory (it cannot read root's home, where Bazel
keeps them). It holds no token and tries what an independent attack test found: reading a
root-only file through a digest that is a path (BatchReadBlobs, ByteStream Read), asking
FindMissingBlobs whether a path exists, running `id -u` as an action, writing the action cache,
and logging in to the service's PostgreSQL. And what it could do before the service answers:
hold the port Bazel's credential helper sends the token to, create the state directory the
launcher is told to use, or plant a link where the launcher writes its ready file.
"""

from __future__ import annotations

import json
import os
import pwd
import shutil
import socket
import stat
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
CREDENTIAL_HELPER = Path(os.environ["CREDENTIAL_HELPER"])
LOCAL = os.environ["REMOTE_LOCAL"]
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


# A listening socket, printing its port; run as the attacker.
LISTENER = (
    "import socket, time\n"
    "s = socket.socket()\n"
    "s.bind(('127.0.0.1', 0))\n"
    "s.listen()\n"
    "print(s.getsockname()[1], flush=True)\n"
    "time.sleep(120)\n"
)


def credentials_for(uri: str, cache_home: Path) -> subprocess.CompletedProcess[str]:
    """What Bazel's credential helper answers for `uri`, as Bazel runs it."""
    return subprocess.run(
        [sys.executable, str(CREDENTIAL_HELPER), "get"],
        input=json.dumps({"uri": uri}),
        env={**os.environ, "XDG_CACHE_HOME": str(cache_home)},
        capture_output=True,
        text=True,
        timeout=60,
    )


class AnotherLocalUserTest(absltest.TestCase):
    @classmethod
    def setUpClass(cls) -> None:
        cls.service = Service()
        # The attacker's link where the launcher used to write its ready file before renaming
        # it (ENDPOINT.partial); planted now, seconds before the service is ready.
        cls.victim = Path(tempfile.mkdtemp(prefix="remote-victim-", dir="/tmp")) / "victim"
        cls.victim.write_text("untouched\n")
        cls.service.ready_file.with_name(cls.service.ready_file.name + ".partial").symlink_to(
            cls.victim
        )
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
        cls.python = python
        # Bazel's credential helper reads the token from XDG_CACHE_HOME/remote-local/token.
        cls.cache_home = cls.shared / "cache"
        (cls.cache_home / "remote-local").mkdir(parents=True)
        cls.token = "token-" + os.urandom(8).hex()
        (cls.cache_home / "remote-local" / "token").write_text(cls.token)

    @classmethod
    def tearDownClass(cls) -> None:
        cls.service.remove()
        shutil.rmtree(cls.shared, ignore_errors=True)
        shutil.rmtree(cls.secret_dir, ignore_errors=True)
        shutil.rmtree(cls.victim.parent, ignore_errors=True)

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

    def test_the_credential_helper_gives_the_service_its_token(self) -> None:
        result = credentials_for(f"grpc://{self.address}", self.cache_home)
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertEqual(
            json.loads(result.stdout), {"headers": {"Authorization": [f"Bearer {self.token}"]}}
        )

    def test_no_token_for_a_port_another_user_holds(self) -> None:
        listener = subprocess.Popen(
            [RUNUSER, "-u", ATTACKER_USER, "--", str(self.python), "-c", LISTENER],
            stdout=subprocess.PIPE,
            text=True,
        )
        try:
            port = int(listener.stdout.readline())
            result = credentials_for(f"grpc://127.0.0.1:{port}", self.cache_home)
        finally:
            listener.kill()
            listener.wait()
        self.assertEqual(result.returncode, 1, result.stdout)
        self.assertNotIn(self.token, result.stdout + result.stderr)
        self.assertIn(f"127.0.0.1:{port} is held by uid", result.stderr)

    def test_no_token_where_nothing_listens(self) -> None:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]  # free again once closed
        result = credentials_for(f"grpc://127.0.0.1:{port}", self.cache_home)
        self.assertEqual(result.returncode, 1, result.stdout)
        self.assertNotIn(self.token, result.stdout + result.stderr)
        self.assertIn("nothing listens", result.stderr)

    def test_the_ready_file_is_not_written_through_a_planted_link(self) -> None:
        self.assertEqual(self.victim.read_text(), "untouched\n")
        self.assertFalse(self.service.ready_file.is_symlink())
        self.assertEqual(self.service.ready_file.read_text(), f"grpc://{self.address}\n")


class StateDirectoryTest(absltest.TestCase):
    """The launcher, as root, refuses a state directory another user could change: it would
    write its logs and the cache through links that user planted there."""

    def refusal(self, state_dir: Path) -> str:
        result = subprocess.run(
            [LOCAL, "--port=0", f"--state_dir={state_dir}"],
            capture_output=True,
            text=True,
            timeout=120,
        )
        self.assertEqual(result.returncode, 2, result.stdout + result.stderr)
        self.assertEqual(list(state_dir.iterdir()) if state_dir.exists() else [], [])
        return result.stderr

    def setUp(self) -> None:
        self.parent = Path(tempfile.mkdtemp(prefix="remote-state-", dir="/tmp"))
        self.addCleanup(shutil.rmtree, self.parent, ignore_errors=True)
        self.parent.chmod(0o755)
        self.attacker = pwd.getpwnam(ATTACKER_USER)

    def test_a_state_dir_another_user_made(self) -> None:
        state_dir = self.parent / "state"
        state_dir.mkdir()
        os.chown(state_dir, self.attacker.pw_uid, self.attacker.pw_gid)
        self.assertIn(f"another user could change {state_dir}", self.refusal(state_dir))

    def test_a_state_dir_under_a_directory_another_user_owns(self) -> None:
        os.chown(self.parent, self.attacker.pw_uid, self.attacker.pw_gid)
        state_dir = self.parent / "state"
        self.assertIn(f"another user could change {self.parent}", self.refusal(state_dir))

    def test_a_link_another_user_owns_on_the_way(self) -> None:
        # Followed, it would send root's state into a directory of that user's choosing, which
        # the launcher would open to others (0711).
        target = Path(tempfile.mkdtemp(prefix="remote-target-", dir="/tmp"))
        self.addCleanup(shutil.rmtree, target, ignore_errors=True)
        link = self.parent / "state"
        link.symlink_to(target)
        os.lchown(link, self.attacker.pw_uid, self.attacker.pw_gid)
        self.assertIn(f"another user could change {link}", self.refusal(link))
        self.assertEqual(stat.S_IMODE(target.stat().st_mode), 0o700)

    def test_a_state_dir_under_a_directory_others_may_write(self) -> None:
        self.parent.chmod(0o777)  # not sticky: others may replace `state` with a link
        state_dir = self.parent / "state"
        self.assertIn(f"another user could change {self.parent}", self.refusal(state_dir))


if __name__ == "__main__":
    absltest.main()
