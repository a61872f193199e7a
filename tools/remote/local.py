"""A Remote Execution API service on loopback: BuildGrid with buildbox workers.

`./bazelw run //tools/remote:local` is what `--config=remote-cache` and `--config=remote` point
at by default, to try remote builds on one machine and for CI to measure cache hits against.
It runs real engines, not a stand-in: BuildGrid (CAS, action cache, execution and bots
services) over a private PostgreSQL (BuildGrid's scheduler needs it), and buildbox workers, each
behind one buildbox-casd, running actions with buildbox-run-hosttools on this machine's tools.

On a shared machine (docs/remote-service-security.md): every request needs a token (a JWT the
launcher signs; Bazel gets the client token from tools/remote/credential_helper.py), every
digest is checked to be hex before storage sees it (buildgrid_cli.py), and, started as root,
no part keeps root: BuildGrid and its PostgreSQL run as the user `buildgrid`, casd, the workers
and the actions they run as the user `buildbox`, each with its files in 0700 directories; the
database takes only its own user (peer authentication) on a socket in such a directory.

Everything lives in one state directory (a fresh temporary one unless --state_dir names one):
the CAS, the configuration, casd's cache, and each process's log. Ctrl-C or SIGTERM stops the
workers first and the database last, then removes a temporary state directory. If any part
dies, the others are stopped, the state directory is kept for its logs, and the exit status is 1.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import signal
import string
import sys
import tempfile
import time
from pathlib import Path

from tools.remote.accounts import (
    CHILD_PATH,
    Account,
    accounts,
    changeable_by_others,
    make_private_dirs,
    private_dir,
    unreachable_by_others,
    write_private,
)
from tools.remote.credential_helper import TOKEN_FILE, default_token_dir
from tools.remote.ports import capabilities_answered, free_port, port_in_use
from tools.remote.processes import Service, StartError, log_tail, start_database
from tools.remote.tokens import CLIENT_SUBJECT, WORKER_SUBJECT, client_secret, self_signed_tls, sign

# BuildGrid's command line and its configuration: this binary's runfiles, beside this file (not
# resolved: the source tree has no `buildgrid` binary).
RUNFILES_HERE = Path(__file__).absolute().parent
BUILDGRID = str(RUNFILES_HERE / "buildgrid")
CONFIG_TEMPLATE = RUNFILES_HERE / "buildgrid.yml.in"
ACL_FILE = RUNFILES_HERE / "acl.yml"
DEFAULT_PORT = 8980  # .bazelrc's remote configs point at grpc://127.0.0.1:8980
BUILDBOX_TOOLS = ("buildbox-casd", "buildbox-worker", "buildbox-run-hosttools")
POSTGRES_BIN_GLOB = "/usr/lib/postgresql/*/bin"
# The Debian packages that provide the tools above; ./bazelw's root installs them.
DEBIAN_PACKAGES = "buildbox postgresql"
# The platform the workers offer, in Bazel's exec_properties keys (//tools/remote:worker_platform).
ISA_NAMES = {"x86_64": "x86-64", "aarch64": "aarch64"}


def readable_runfiles(run_dir: Path) -> Path:
    """A copy of this binary's runfiles (BuildGrid and its interpreter) that any user can read.

    Bazel keeps them under the caller's home, which root keeps 0700, so the service user could
    not run BuildGrid from there. The copy is root's and read-only for everyone else.
    """
    source = Path(os.environ.get("RUNFILES_DIR") or RUNFILES_HERE.parents[2])
    code = run_dir / "code"
    shutil.copytree(source, code, symlinks=False, ignore_dangling_symlinks=True)
    for directory, _, files in os.walk(code):
        Path(directory).chmod(0o755)
        for name in files:
            path = Path(directory, name)
            # Bazel keeps some files owner-executable only (the interpreter is 0744).
            path.chmod(0o755 if path.stat().st_mode & 0o100 else 0o644)
    return code


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


class Refused(Exception):
    """A request this launcher will not carry out: exit status 2 with the message."""


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--port", type=int, default=DEFAULT_PORT, help="loopback port; 0 picks a free one"
    )
    parser.add_argument("--workers", type=int, default=2, help="buildbox workers, one job each")
    parser.add_argument("--state_dir", type=Path, help="kept after exit (default: temporary)")
    parser.add_argument("--ready_file", type=Path, help="gets the endpoint once it is ready")
    parser.add_argument(
        "--token_dir",
        type=Path,
        default=default_token_dir(),
        help="gets the client token (default: where Bazel's credential helper reads it)",
    )
    args = parser.parse_args()
    if not 0 <= args.port <= 65535 or args.workers < 1:
        parser.error("--port must be 0..65535 and --workers at least 1")
    return args


def state_directory(requested: Path | None, service_account: Account) -> tuple[Path, bool]:
    """The state directory, and whether it is a temporary one to remove after a clean stop."""
    if requested:
        # Checked before anything is made in it, and again after (as given and resolved).
        requested = Path(os.path.abspath(requested))
        unsafe = changeable_by_others(requested)
        if unsafe is None:
            try:
                make_private_dirs(requested)
            except FileExistsError as error:
                unsafe = Path(error.filename)
            else:
                unsafe = changeable_by_others(requested)
        if unsafe is not None:
            raise Refused(
                f"--state_dir {requested}: another user could change {unsafe} (its owner is "
                "not root or you, or group or others may write it); pick a directory only you "
                "and root can change"
            )
        state_dir, temporary = requested.resolve(), False
        if any(state_dir.iterdir()):
            raise Refused(f"--state_dir {requested} is not empty")
    else:
        state_dir, temporary = Path(tempfile.mkdtemp(prefix="remote-local-")), True
    if service_account.switch:
        blocked = unreachable_by_others(state_dir)
        if blocked:
            raise Refused(
                f"--state_dir {state_dir}: the service users cannot enter {blocked}; "
                "pick a directory whose parents others may enter (o+x)"
            )
        # Others may pass through, to their own 0700 directories; the logs stay root's.
        state_dir.chmod(0o711)
    return state_dir, temporary


def start_buildgrid(
    service: Service,
    addresses: tuple[str, str],
    secret: str,
    client_token: str,
    postgres_bin: Path,
    service_account: Account,
) -> Path:
    """BuildGrid over its own PostgreSQL, answering on the first address (clients) and the
    second (TLS, for casd and the workers); returns the TLS certificate of the second."""
    address, worker_address = addresses
    # As root, BuildGrid gets the bare environment of its user and runs from a copy its user
    # can read; otherwise it is the caller's, with the caller's environment.
    config_dir = private_dir(service.state_dir / "buildgrid", service_account)
    buildgrid_bin = BUILDGRID
    service_env: dict[str, str] | None = None
    if service_account.switch:
        code = readable_runfiles(service.run_dir)
        buildgrid_bin = str(code / "_main/tools/remote/buildgrid")
        service_env = {"PATH": CHILD_PATH, "HOME": str(config_dir), "RUNFILES_DIR": str(code)}
    database = start_database(service, postgres_bin, service_account, service_env)
    service.run(
        "migrate", [buildgrid_bin, "migrate", "apply", database], service_account, service_env
    )

    secret_file = config_dir / "jwt.secret"
    write_private(secret_file, secret, service_account)
    acl_file = config_dir / "acl.yml"
    write_private(acl_file, ACL_FILE.read_text(), service_account)
    tls_key, tls_cert = config_dir / "tls.key", config_dir / "tls.crt"
    self_signed_tls("127.0.0.1", tls_key, tls_cert, service_account)
    config = config_dir / "buildgrid.yml"
    template = string.Template(CONFIG_TEMPLATE.read_text())
    write_private(
        config,
        template.substitute(
            address=address,
            worker_address=worker_address,
            tls_key=tls_key,
            tls_cert=tls_cert,
            database=database,
            cas_dir=private_dir(service.state_dir / "cas", service_account),
            secret_file=secret_file,
            acl_file=acl_file,
        ),
        service_account,
    )
    buildgrid = service.spawn(
        "buildgrid", [buildgrid_bin, "server", "start", str(config)], service_account, service_env
    )
    service.wait_until(
        buildgrid,
        lambda: capabilities_answered(address, client_token, service_account),
        "gRPC answer",
    )
    return tls_cert


def start_workers(
    service: Service,
    tools: dict[str, str],
    worker_address: str,
    tls_cert: Path,
    worker_token: str,
    workers: int,
    worker_account: Account,
) -> None:
    """One buildbox-casd and `workers` buildbox workers behind it, as `worker_account`."""
    worker_dir = private_dir(service.state_dir / "worker", worker_account)
    worker_env = {"PATH": CHILD_PATH, "HOME": str(worker_dir)} if worker_account.switch else None
    worker_cert = worker_dir / "server.crt"
    write_private(worker_cert, tls_cert.read_text(), worker_account)
    token_file = worker_dir / "token"
    write_private(token_file, worker_token, worker_account)
    casd_socket = private_dir(service.run_dir / "casd", worker_account) / "casd.sock"
    casd = service.spawn(
        "casd",
        [
            tools["buildbox-casd"],
            f"--cas-remote=https://{worker_address}",
            f"--cas-server-cert={worker_cert}",
            f"--cas-access-token={token_file}",
            f"--bind=unix:{casd_socket}",
            str(worker_dir / "casd"),
        ],
        worker_account,
        worker_env,
    )
    service.wait_until(casd, casd_socket.exists, "socket")

    isa = ISA_NAMES.get(platform.machine(), platform.machine())
    for number in range(1, workers + 1):
        service.spawn(
            f"worker-{number}",
            [
                tools["buildbox-worker"],
                f"--bots-remote=https://{worker_address}",
                f"--bots-server-cert={worker_cert}",
                f"--bots-access-token={token_file}",
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
            worker_account,
            worker_env,
        )


def announce_ready(args: argparse.Namespace, port: int, users: str, state_dir: Path) -> None:
    """The ready file (written whole, then renamed), and how to use the service."""
    endpoint = f"grpc://127.0.0.1:{port}"
    if args.ready_file:
        # A new file of a name no one could plant a link at beforehand (the directory may be
        # /tmp), readable by all (the endpoint is no secret), renamed over the ready file.
        descriptor, partial = tempfile.mkstemp(
            prefix=args.ready_file.name + ".", suffix=".partial", dir=args.ready_file.parent
        )
        with os.fdopen(descriptor, "w") as out:
            out.write(endpoint + "\n")
            os.fchmod(out.fileno(), 0o644)
        os.replace(partial, args.ready_file)
    flag = "" if port == DEFAULT_PORT else f" --remote_cache={endpoint}"
    print(
        f"remote: ready on {endpoint}: BuildGrid, {args.workers} buildbox worker(s) "
        f"({users}), state in {state_dir}\n"
        f"remote: clients need the token in {args.token_dir / TOKEN_FILE} "
        "(.bazelrc's credential helper reads it)\n"
        f"remote: try ./bazelw build //... --config=remote-cache{flag}\n"
        "remote: Ctrl-C stops it",
        flush=True,
    )


def supervise(service: Service, stopping: list[int]) -> bool:
    """Waits for Ctrl-C or SIGTERM (True) or for a part to die (False, its log's tail printed)."""
    while not stopping:
        dead = service.dead_child()
        if dead:
            status = dead.process.returncode
            print(f"remote: {dead.name} exited ({status}):\n{log_tail(dead.log)}", file=sys.stderr)
            return False
        time.sleep(0.2)
    return True


def main() -> int:
    args = parse_args()
    tools, postgres_bin = find_tools()
    service_account, worker_account = accounts()
    port = args.port or free_port()
    try:
        if port_in_use(port):
            raise Refused(f"127.0.0.1:{port} is already in use; pass --port")
        state_dir, temporary = state_directory(args.state_dir, service_account)
    except Refused as refusal:
        print(f"remote: {refusal}", file=sys.stderr)
        return 2
    address = f"127.0.0.1:{port}"
    worker_address = f"127.0.0.1:{free_port()}"  # TLS, for casd and the workers
    secret = client_secret(args.token_dir)
    client_token = sign(secret, CLIENT_SUBJECT)

    stopping: list[int] = []
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda signum, _frame: stopping.append(signum))

    service = Service(state_dir)
    try:
        tls_cert = start_buildgrid(
            service, (address, worker_address), secret, client_token, postgres_bin, service_account
        )
        start_workers(
            service,
            tools,
            worker_address,
            tls_cert,
            sign(secret, WORKER_SUBJECT),
            args.workers,
            worker_account,
        )
        users = (
            f"BuildGrid as {service_account.name}, actions as {worker_account.name}"
            if service_account.switch
            else f"everything as {service_account.name}"
        )
        announce_ready(args, port, users, state_dir)
        failed = not supervise(service, stopping)
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
