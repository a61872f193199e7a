"""A Remote Execution API service on loopback: BuildGrid with buildbox workers.

`./bazelw run //tools/remote:local` is what `--config=remote-cache` and `--config=remote` point
at by default, to try remote builds on one machine and for CI to measure cache hits against.
It runs real engines, not a stand-in: BuildGrid (CAS, action cache, execution and bots
services) over a private PostgreSQL (BuildGrid's scheduler needs it), and buildbox workers, each
behind one buildbox-casd, running actions with buildbox-run-hosttools on this machine's tools.

Everything lives in one state directory (a fresh temporary one unless --state_dir names one):
the database, the CAS, and each process's log. Ctrl-C or SIGTERM stops the workers first and
the database last, then removes a temporary state directory. If any part dies, the others are
stopped, the state directory is kept for its logs, and the exit status is 1.
"""

from __future__ import annotations

import argparse
import ctypes
import os
import platform
import pwd
import shutil
import signal
import socket
import string
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import grpc
from buildgrid._protos.build.bazel.remote.execution.v2 import (
    remote_execution_pb2,
    remote_execution_pb2_grpc,
)

# BuildGrid's command line and its configuration: this binary's runfiles, beside this file (not
# resolved: the source tree has no `buildgrid` binary).
RUNFILES_HERE = Path(__file__).absolute().parent
BUILDGRID = str(RUNFILES_HERE / "buildgrid")
CONFIG_TEMPLATE = RUNFILES_HERE / "buildgrid.yml.in"
DEFAULT_PORT = 8980  # .bazelrc's remote configs point at grpc://127.0.0.1:8980
BUILDBOX_TOOLS = ("buildbox-casd", "buildbox-worker", "buildbox-run-hosttools")
POSTGRES_BIN_GLOB = "/usr/lib/postgresql/*/bin"
# The Debian packages that provide the tools above; ./bazelw's root installs them.
DEBIAN_PACKAGES = "buildbox postgresql"
START_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 10.0
# The platform the workers offer, in Bazel's exec_properties keys (//tools/remote:worker_platform).
ISA_NAMES = {"x86_64": "x86-64", "aarch64": "aarch64"}


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


class Service:
    """Starts the parts in dependency order and stops them in the reverse order."""

    def __init__(self, state_dir: Path) -> None:
        self.state_dir = state_dir
        self.logs = state_dir / "logs"
        self.logs.mkdir(parents=True, exist_ok=True)
        self.children: list[Child] = []
        # The database and casd's socket: short paths under /tmp, whatever the state directory
        # is (a Unix socket's path has at most 107 bytes, and the postgres user must reach the
        # database when run as root). Nothing there outlives a run: the action cache is in
        # memory, and the CAS on disk keeps nothing in the database.
        self.run_dir = Path(tempfile.mkdtemp(prefix="remote-local-run-", dir="/tmp"))

    def spawn(self, name: str, command: list[str], user: str | None = None) -> Child:
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
                user=user,
                group=pwd.getpwnam(user).pw_gid if user else None,
                extra_groups=[] if user else None,
            )
        child = Child(name, process, log)
        self.children.append(child)
        return child

    def run(self, name: str, command: list[str], user: str | None = None) -> None:
        """Runs a set-up step to completion."""
        child = self.spawn(name, command, user)
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


def find_tools() -> tuple[dict[str, str], Path]:
    """Paths of the buildbox tools and PostgreSQL's bin directory, or a clear SystemExit."""
    tools = {name: shutil.which(name) for name in BUILDBOX_TOOLS}
    postgres_dirs = sorted(
        Path("/").glob(POSTGRES_BIN_GLOB.lstrip("/")), key=lambda p: p.parent.name
    )
    missing = [name for name, path in tools.items() if path is None]
    if not postgres_dirs:
        missing.append("postgres (" + POSTGRES_BIN_GLOB + ")")
    if missing:
        raise SystemExit(
            f"remote: not found: {', '.join(missing)}; install Debian's {DEBIAN_PACKAGES} "
            "packages (./bazelw's root has them)"
        )
    return {name: str(path) for name, path in tools.items()}, postgres_dirs[-1]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def port_in_use(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) == 0


def start_database(service: Service, bin_dir: Path) -> str:
    """A private PostgreSQL on a Unix socket in the run directory; returns its SQLAlchemy URL.

    Run as root, PostgreSQL runs as Debian's postgres user (it refuses root), who must reach it.
    """
    user = "postgres" if os.geteuid() == 0 else None
    db_dir = service.run_dir / "db"
    db_dir.mkdir()
    if user:
        try:
            entry = pwd.getpwnam(user)
        except KeyError:
            raise StartError(
                "as root, PostgreSQL runs as the postgres user: there is none"
            ) from None
        os.chown(db_dir, entry.pw_uid, entry.pw_gid)
        service.run_dir.chmod(0o711)
    data = db_dir / "data"
    service.run(
        "initdb",
        [str(bin_dir / "initdb"), "-D", str(data), "-U", "buildgrid", "-A", "trust", "--no-sync"],
        user,
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
        user,
    )
    socket_file = db_dir / ".s.PGSQL.5432"
    service.wait_until(postgres, socket_file.exists, "database socket")
    return f"postgresql+psycopg:///postgres?host={db_dir}&user=buildgrid"


def capabilities_answered(address: str) -> bool:
    with grpc.insecure_channel(address) as channel:
        stub = remote_execution_pb2_grpc.CapabilitiesStub(channel)
        try:
            stub.GetCapabilities(remote_execution_pb2.GetCapabilitiesRequest(), timeout=1)
        except grpc.RpcError:
            return False
    return True


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--port", type=int, default=DEFAULT_PORT, help="loopback port; 0 picks a free one"
    )
    parser.add_argument("--workers", type=int, default=2, help="buildbox workers, one job each")
    parser.add_argument("--state_dir", type=Path, help="kept after exit (default: temporary)")
    parser.add_argument("--ready_file", type=Path, help="gets the endpoint once it is ready")
    args = parser.parse_args()
    if not 0 <= args.port <= 65535 or args.workers < 1:
        parser.error("--port must be 0..65535 and --workers at least 1")

    tools, postgres_bin = find_tools()
    port = args.port or free_port()
    if port_in_use(port):
        print(f"remote: 127.0.0.1:{port} is already in use; pass --port", file=sys.stderr)
        return 2
    address = f"127.0.0.1:{port}"
    endpoint = f"grpc://{address}"

    if args.state_dir:
        args.state_dir.mkdir(parents=True, exist_ok=True)
        if any(args.state_dir.iterdir()):
            print(f"remote: --state_dir {args.state_dir} is not empty", file=sys.stderr)
            return 2
        state_dir, temporary = args.state_dir.resolve(), False
    else:
        state_dir, temporary = Path(tempfile.mkdtemp(prefix="remote-local-")), True

    stopping: list[int] = []
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda signum, _frame: stopping.append(signum))

    service = Service(state_dir)
    failed = False
    try:
        database = start_database(service, postgres_bin)
        service.run("migrate", [BUILDGRID, "migrate", "apply", database])

        config = state_dir / "buildgrid.yml"
        template = string.Template(CONFIG_TEMPLATE.read_text())
        cas_dir = state_dir / "cas"
        config.write_text(template.substitute(address=address, database=database, cas_dir=cas_dir))
        buildgrid = service.spawn("buildgrid", [BUILDGRID, "server", "start", str(config)])
        service.wait_until(buildgrid, lambda: capabilities_answered(address), "gRPC answer")

        casd_socket = service.run_dir / "casd.sock"
        casd = service.spawn(
            "casd",
            [
                tools["buildbox-casd"],
                f"--cas-remote=http://{address}",
                f"--bind=unix:{casd_socket}",
                str(state_dir / "casd"),
            ],
        )
        service.wait_until(casd, casd_socket.exists, "socket")

        isa = ISA_NAMES.get(platform.machine(), platform.machine())
        for number in range(1, args.workers + 1):
            service.spawn(
                f"worker-{number}",
                [
                    tools["buildbox-worker"],
                    f"--bots-remote=http://{address}",
                    f"--cas-remote=unix:{casd_socket}",
                    f"--buildbox-run={tools['buildbox-run-hosttools']}",
                    # No FUSE: inputs are hard links or copies from casd's cache.
                    "--runner-arg=--staging-mode=copy-or-link",
                    "--platform",
                    "OSFamily=linux",
                    "--platform",
                    f"ISA={isa}",
                    f"local-worker-{number}",
                ],
            )

        if args.ready_file:
            partial = args.ready_file.with_name(args.ready_file.name + ".partial")
            partial.write_text(endpoint + "\n")
            partial.replace(args.ready_file)
        flag = "" if port == DEFAULT_PORT else f" --remote_cache={endpoint}"
        print(
            f"remote: ready on {endpoint}: BuildGrid, {args.workers} buildbox worker(s), "
            f"state in {state_dir}\n"
            f"remote: try ./bazelw build //... --config=remote-cache{flag}\n"
            "remote: Ctrl-C stops it",
            flush=True,
        )

        while not stopping:
            dead = service.dead_child()
            if dead:
                status = dead.process.returncode
                print(
                    f"remote: {dead.name} exited ({status}):\n{log_tail(dead.log)}", file=sys.stderr
                )
                failed = True
                break
            time.sleep(0.2)
    except StartError as error:
        print(f"remote: {error}", file=sys.stderr)
        failed = True
    finally:
        service.stop()

    if failed:
        print(f"remote: logs kept in {state_dir / 'logs'}", file=sys.stderr)
        return 1
    if temporary:
        shutil.rmtree(state_dir, ignore_errors=True)
    print("remote: stopped", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
