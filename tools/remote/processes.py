"""The local remote service's processes: started in dependency order, stopped in reverse.

Each part runs in its own session as its own user, with its output in a log of its own, and
dies with the launcher (PR_SET_PDEATHSIG), even when the launcher is killed with SIGKILL.
"""

from __future__ import annotations

import ctypes
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from tools.remote.accounts import Account, private_dir

START_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 10.0


class StartError(Exception):
    """A part of the service did not start; the message says which and where its log is."""


@dataclass
class Child:
    """One process of the service and the log its output goes to."""

    name: str
    process: subprocess.Popen[bytes]
    log: Path


def die_with_parent() -> None:
    """Runs in each child before exec: SIGTERM it if this launcher dies, even by SIGKILL."""
    pr_set_pdeathsig = 1
    ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGTERM)


def log_tail(log: Path, lines: int = 20) -> str:
    try:
        text = log.read_text(errors="replace").splitlines()
    except OSError:
        return ""
    return "\n".join(f"    {line}" for line in text[-lines:])


# Runs as root in its own session, outside the launcher: it waits for the end of its stdin, which
# comes when the launcher exits however it ends (SIGKILL and the OOM killer included), then
# removes the run directory. Its copy of BuildGrid's runfiles is hundreds of MB, and a test that
# SIGKILLs the launcher once left one in /tmp per run. A part still stopping may hold a file in
# it for a moment, so the removal is retried.
JANITOR = """
import os, shutil, sys, time
sys.stdin.buffer.read()
for _ in range(100):
    shutil.rmtree(sys.argv[1], ignore_errors=True)
    if not os.path.lexists(sys.argv[1]):
        break
    time.sleep(0.1)
"""


def start_janitor(run_dir: Path) -> int:
    """Starts the process that removes `run_dir` after this one; returns the pipe to hold open."""
    read_end, write_end = os.pipe()
    subprocess.Popen(
        [sys.executable, "-c", JANITOR, str(run_dir)],
        stdin=read_end,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    os.close(read_end)
    return write_end


class Service:
    """Starts the parts in dependency order and stops them in the reverse order."""

    def __init__(self, state_dir: Path) -> None:
        self.state_dir = state_dir
        self.logs = state_dir / "logs"
        self.logs.mkdir(mode=0o700, exist_ok=True)
        self.children: list[Child] = []
        # The database's and casd's sockets: short paths under /tmp, whatever the state
        # directory is (a Unix socket's path has at most 107 bytes), each in a 0700 directory
        # of its user. Nothing there outlives a run: the action cache is in memory, and the CAS
        # on disk keeps nothing in the database.
        self.run_dir = Path(tempfile.mkdtemp(prefix="remote-local-run-", dir="/tmp"))
        self.run_dir.chmod(0o711)
        self._janitor_pipe = start_janitor(self.run_dir)
        # Where this run's sockets are, for a person reading the state directory (and a test).
        link = state_dir / "run"
        link.unlink(missing_ok=True)
        link.symlink_to(self.run_dir)

    def spawn(
        self, name: str, command: list[str], account: Account, env: dict[str, str] | None = None
    ) -> Child:
        log = self.logs / f"{name}.log"
        with log.open("ab") as out:
            process = subprocess.Popen(
                command,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                # Its own session: a Ctrl-C at the terminal reaches only this launcher, which
                # then stops the parts in order.
                start_new_session=True,
                preexec_fn=die_with_parent,
                user=account.uid if account.switch else None,
                group=account.gid if account.switch else None,
                extra_groups=[] if account.switch else None,
                env=env,
            )
        child = Child(name, process, log)
        self.children.append(child)
        return child

    def run(
        self, name: str, command: list[str], account: Account, env: dict[str, str] | None = None
    ) -> None:
        """Runs a set-up step to completion."""
        child = self.spawn(name, command, account, env)
        if child.process.wait() != 0:
            raise StartError(
                f"{name} failed (exit {child.process.returncode}):\n{log_tail(child.log)}"
            )
        self.children.remove(child)

    def wait_until(self, child: Child, ready, what: str) -> None:
        deadline = time.monotonic() + START_TIMEOUT_S
        while not ready():
            if child.process.poll() is not None:
                raise StartError(
                    f"{child.name} exited ({child.process.returncode}) before {what}:\n"
                    f"{log_tail(child.log)}"
                )
            if time.monotonic() > deadline:
                raise StartError(f"{child.name}: no {what} after {START_TIMEOUT_S:.0f} s")
            time.sleep(0.1)

    def dead_child(self) -> Child | None:
        return next((c for c in self.children if c.process.poll() is not None), None)

    def stop(self) -> None:
        """Stops every part, last started first; each gets STOP_TIMEOUT_S before SIGKILL."""
        for child in reversed(self.children):
            if child.process.poll() is None:
                # PostgreSQL's fast shutdown is SIGINT; SIGTERM would wait for BuildGrid's
                # connections, which are gone by now anyway.
                sig = signal.SIGINT if child.name == "postgres" else signal.SIGTERM
                child.process.send_signal(sig)
                try:
                    child.process.wait(STOP_TIMEOUT_S)
                except subprocess.TimeoutExpired:
                    print(f"remote: {child.name} did not stop in time: killed", file=sys.stderr)
                    child.process.kill()
                    child.process.wait()
        self.children.clear()
        shutil.rmtree(self.run_dir, ignore_errors=True)


def start_database(
    service: Service, bin_dir: Path, owner: Account, env: dict[str, str] | None
) -> str:
    """A private PostgreSQL on a Unix socket in a 0700 directory; returns its SQLAlchemy URL.

    Its one role is named after `owner`, and peer authentication admits only that user.
    """
    db_dir = private_dir(service.run_dir / "db", owner)
    data = db_dir / "data"
    service.run(
        "initdb",
        [
            *(str(bin_dir / "initdb"), "-D", str(data), "-U", owner.name, "--no-sync"),
            *("--auth-local=peer", "--auth-host=reject"),
            # Not the environment's locale: under SQL_ASCII (a bare environment's C locale),
            # the driver hands BuildGrid bytes where it expects text.
            *("--encoding=UTF8", "--locale=C"),
        ],
        owner,
        env,
    )
    postgres = service.spawn(
        "postgres",
        [
            str(bin_dir / "postgres"),
            "-D",
            str(data),
            "-k",
            str(db_dir),  # the socket's directory
            "-c",
            "listen_addresses=",  # no TCP port at all
            "-c",
            "fsync=off",  # thrown away at the end
        ],
        owner,
        env,
    )
    socket_file = db_dir / ".s.PGSQL.5432"
    service.wait_until(postgres, socket_file.exists, "database socket")
    return f"postgresql+psycopg:///postgres?host={db_dir}&user={owner.name}"
