"""Runs an OCI image as Cloud Run would, with `runc`, a real OCI runtime: the layers unpacked
into a bundle's root filesystem (read-only), a runtime config made from the image config
(Entrypoint, Env, WorkingDir, User, plus `PORT`), the host's network shared so that the server
is reachable on this machine's loopback, and `runc kill` to deliver SIGTERM.

`why_runc_cannot_run()` says why a machine cannot (not root, no runc); a caller fails with it.
"""

from __future__ import annotations

import ctypes
import json
import os
import re
import shutil
import signal
import subprocess
import uuid
from pathlib import Path
from typing import IO

from bazel.tools.oci_layout import Layout

RUNC = "runc"

# What runc's own `runc spec` writes for a container, minus the network namespace (the host's
# is shared, as `docker run --network host` does) and with /tmp an in-memory file system as on
# Cloud Run, where the rest of the root filesystem is not writable by the server's user.
_MOUNTS = [
    {"destination": "/proc", "type": "proc", "source": "proc"},
    {
        "destination": "/dev",
        "type": "tmpfs",
        "source": "tmpfs",
        "options": ["nosuid", "strictatime", "mode=755", "size=65536k"],
    },
    {
        "destination": "/dev/pts",
        "type": "devpts",
        "source": "devpts",
        "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620"],
    },
    {
        "destination": "/dev/shm",
        "type": "tmpfs",
        "source": "shm",
        "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"],
    },
    {
        "destination": "/dev/mqueue",
        "type": "mqueue",
        "source": "mqueue",
        "options": ["nosuid", "noexec", "nodev"],
    },
    {
        "destination": "/sys",
        "type": "sysfs",
        "source": "sysfs",
        "options": ["nosuid", "noexec", "nodev", "ro"],
    },
    {
        "destination": "/tmp",
        "type": "tmpfs",
        "source": "tmpfs",
        "options": ["nosuid", "nodev", "mode=1777", "size=65536k"],
    },
]
_MASKED_PATHS = [
    "/proc/acpi",
    "/proc/asound",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/sys/firmware",
]
_READONLY_PATHS = [
    "/proc/bus",
    "/proc/fs",
    "/proc/irq",
    "/proc/sys",
    "/proc/sysrq-trigger",
]


_CLONE_NEWNS = 0x00020000
_MS_BIND, _MS_REC, _MS_PRIVATE = 0x1000, 0x4000, 0x40000


class RuncUnavailable(Exception):
    """This machine cannot run containers with runc; the message says why."""


def why_runc_cannot_run() -> str | None:
    """None when runc can run containers here, else the reason, for a test to fail with."""
    if os.geteuid() != 0:
        return (
            "runc runs containers as root only (this kit runs no rootless runtime): run the "
            "test as root, e.g. with ./bazelw, which runs Bazel as root, or leave it out with "
            "--test_tag_filters=-requires-root"
        )
    if shutil.which(RUNC) is None:
        return (
            "no `runc` on PATH: install Debian's runc package (the root that ./bazelw "
            "provisions has it), or leave this test out with --test_tag_filters=-requires-tools"
        )
    try:
        version = subprocess.run(
            [RUNC, "--version"], capture_output=True, text=True, timeout=30, check=False
        )
    except OSError as error:
        return f"cannot execute runc: {error}"
    if version.returncode != 0:
        return f"`runc --version` failed: {version.stderr.strip()}"
    return None


def root_is_a_mount() -> bool:
    """Whether this process's / is the root of a mount. runc needs it to be (it makes / a
    slave mount before preparing the container's root); in a plain chroot, such as the root
    ./bazelw runs Bazel in, it is a mere directory."""
    with open("/proc/self/mountinfo", encoding="utf-8") as mountinfo:
        return any(line.split()[4] == "/" for line in mountinfo)


def enter_root_mount(scratch: Path) -> None:
    """Makes / a mount for this process and its children, when it is not: a private mount
    namespace of this process's own, where / is bound recursively onto `scratch` (an empty
    directory) and the process chroots there. The files are the same, at the same paths; the
    host's mounts are untouched. Call it before any thread starts (unshare needs one thread)."""
    if root_is_a_mount():
        return
    libc = ctypes.CDLL(None, use_errno=True)

    def check(result: int, what: str) -> None:
        if result != 0:
            error = ctypes.get_errno()
            raise RuncUnavailable(f"cannot make / a mount for runc: {what}: {os.strerror(error)}")

    cwd = os.getcwd()
    check(libc.unshare(_CLONE_NEWNS), "unshare(CLONE_NEWNS)")
    # A new namespace keeps shared mounts peers of the host's (systemd makes them shared): each
    # mount this process sees turns private first, or the bind below would appear on the host.
    for mount_point in _mount_points():
        check(
            libc.mount(None, mount_point.encode(), None, _MS_PRIVATE | _MS_REC, None),
            f"make {mount_point} private",
        )
    if any("shared:" in line for line in _mountinfo()):
        raise RuncUnavailable("cannot make / a mount for runc: a mount stayed shared")
    target = str(scratch).encode()
    check(libc.mount(b"/", target, None, _MS_BIND | _MS_REC, None), "bind / recursively")
    check(libc.mount(None, target, None, _MS_PRIVATE | _MS_REC, None), "make it private")
    os.chroot(scratch)
    os.chdir(cwd)


def _mountinfo() -> list[str]:
    with open("/proc/self/mountinfo", encoding="utf-8") as mountinfo:
        return mountinfo.read().splitlines()


def _mount_points() -> list[str]:
    """The mount points this process sees (mountinfo's fifth field, octal escapes decoded)."""
    points = []
    for line in _mountinfo():
        escaped = line.split()[4]
        points.append(re.sub(r"\\([0-7]{3})", lambda m: chr(int(m[1], 8)), escaped))
    return sorted(set(points))


def runtime_config(
    image_config: dict,
    env: dict[str, str] | None = None,
    readonly: bool = True,
    args: list[str] | None = None,
    command: list[str] | None = None,
) -> dict:
    """The OCI runtime config (config.json) that runs `image_config` (an OCI image config's
    `config` object) as its image says: its user, entrypoint and command, environment (with
    `env` on top), working directory; the host's network namespace. `args` and `command`, as a
    Cloud Run manifest's container `args` and `command`, replace the image's Cmd and
    Entrypoint (Kubernetes' rule: `command` alone drops the image's Cmd too)."""
    user = image_config.get("User") or "0:0"
    uid, _, gid = user.partition(":")
    if not uid.isdigit() or not (gid or "0").isdigit():
        raise ValueError(f"image User {user!r} is not numeric uid:gid (no /etc/passwd lookup)")
    entrypoint = (image_config.get("Entrypoint") or []) if command is None else command
    if args is None:
        args = (image_config.get("Cmd") or []) if command is None else []
    args = [*entrypoint, *args]
    if not args:
        raise ValueError("the image config has neither Entrypoint nor Cmd")
    environment = dict(entry.split("=", 1) for entry in image_config.get("Env") or [])
    environment.setdefault("PATH", "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")
    environment.update(env or {})
    return {
        "ociVersion": "1.2.0",
        "process": {
            "terminal": False,
            "user": {"uid": int(uid), "gid": int(gid or 0)},
            "args": args,
            "env": [f"{key}={value}" for key, value in environment.items()],
            "cwd": image_config.get("WorkingDir") or "/",
            # A nonroot server needs no capability; and no setuid program may give it one.
            "capabilities": {"bounding": [], "effective": [], "permitted": []},
            "noNewPrivileges": True,
        },
        "root": {"path": "rootfs", "readonly": readonly},
        "hostname": "container",
        "mounts": _MOUNTS,
        "linux": {
            # No "network" namespace: the host's, so its loopback reaches the server.
            "namespaces": [{"type": t} for t in ("pid", "ipc", "uts", "mount")],
            "resources": {"devices": [{"allow": False, "access": "rwm"}]},
            "maskedPaths": _MASKED_PATHS,
            "readonlyPaths": _READONLY_PATHS,
        },
    }


class Bundle:
    """An OCI runtime bundle: `rootfs/` (the image's layers, unpacked once) and config.json,
    rewritten for each run. With `rootfs`, an image unpacked already: read-only roots of one
    image can be shared by every container of it (the local Cloud Run's revisions)."""

    def __init__(self, layout: Layout, directory: Path, rootfs: Path | None = None) -> None:
        self.layout = layout
        self.directory = directory
        self.shared_rootfs = rootfs is not None
        self.rootfs = rootfs or directory / "rootfs"
        if rootfs is None:
            self.rootfs.mkdir(parents=True)
            self.rootfs.chmod(0o755)  # it becomes /, which everyone must be able to enter
            layout.unpack(self.rootfs)
        else:
            directory.mkdir(parents=True, exist_ok=True)
        self.image_config = layout.config["config"]

    def configure(
        self,
        env: dict[str, str],
        readonly: bool = True,
        args: list[str] | None = None,
        command: list[str] | None = None,
    ) -> dict:
        config = runtime_config(self.image_config, env, readonly, args, command)
        if self.shared_rootfs:
            if not readonly:
                raise ValueError("a shared root filesystem is mounted read-only only")
            config["root"]["path"] = str(self.rootfs)
        (self.directory / "config.json").write_text(json.dumps(config, indent=2))
        return config


class Container:
    """One `runc run` of a bundle, in the foreground (runc waits for the container and exits
    with its status); stdout and stderr are the container's. Use as a context manager, and
    start() inside: on the way out the container is killed if still running, and deleted."""

    def __init__(
        self, bundle: Bundle, state_dir: Path, stdout: IO | int | None, stderr: IO | int | None
    ) -> None:
        self.bundle = bundle
        self.id = f"kit-{uuid.uuid4().hex[:12]}"
        self._runc = [RUNC, "--root", str(state_dir)]
        self._stdout, self._stderr = stdout, stderr
        self.process: subprocess.Popen | None = None

    def start(self) -> subprocess.Popen:
        """Starts `runc run`; the caller checked why_runc_cannot_run() (a check here would
        count in every start's time)."""
        self.process = subprocess.Popen(
            [*self._runc, "run", "--bundle", str(self.bundle.directory), self.id],
            stdin=subprocess.DEVNULL,
            stdout=self._stdout,
            stderr=self._stderr,
            text=True,
        )
        return self.process

    def state(self) -> dict | None:
        """`runc state`: status, pid (on the host) and more; None when there is no container."""
        result = subprocess.run(
            [*self._runc, "state", self.id], capture_output=True, text=True, check=False
        )
        return json.loads(result.stdout) if result.returncode == 0 else None

    def kill(self, signum: int = signal.SIGTERM) -> None:
        """Signals the container's first process (the entrypoint, PID 1 inside)."""
        subprocess.run(
            [*self._runc, "kill", self.id, signal.Signals(signum).name.removeprefix("SIG")],
            capture_output=True,
            text=True,
            check=True,
        )

    def __enter__(self) -> Container:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Kills what is left (SIGKILL), reaps runc and deletes the container; never raises."""
        if self.process is not None and self.process.poll() is None:
            subprocess.run([*self._runc, "kill", self.id, "KILL"], capture_output=True, check=False)
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        subprocess.run(
            [*self._runc, "delete", "--force", self.id], capture_output=True, check=False
        )
