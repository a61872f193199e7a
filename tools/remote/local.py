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
import ctypes
import datetime
import ipaddress
import os
import platform
import pwd
import secrets
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
import jwt
from buildgrid._protos.build.bazel.remote.execution.v2 import (
    remote_execution_pb2,
    remote_execution_pb2_grpc,
)
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tools.remote.credential_helper import TOKEN_FILE, default_token_dir

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
START_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 10.0
# Started as root, the parts run as these users (tools/bazelw/provision.sh makes them).
SERVICE_USER = "buildgrid"  # BuildGrid and its PostgreSQL
WORKER_USER = "buildbox"  # casd, the workers, and the actions they run
# A token's subject decides what it may call (acl.yml).
CLIENT_SUBJECT, WORKER_SUBJECT = "client", "worker"
# BuildGrid requires an expiry; the signing secret, not the expiry, is what bounds a token:
# remove the token directory to revoke every token.
TOKEN_LIFETIME_S = 10 * 365 * 24 * 3600
# The environment of a part that runs as another user: nothing of the launcher's (it may hold
# credentials), which the actions running as that user could read.
CHILD_PATH = "/usr/local/bin:/usr/bin:/bin"
# The platform the workers offer, in Bazel's exec_properties keys (//tools/remote:worker_platform).
ISA_NAMES = {"x86_64": "x86-64", "aarch64": "aarch64"}


@dataclass(frozen=True)
class Account:
    """The user a part runs as; `switch` is false when that is this process's own user."""

    name: str
    uid: int
    gid: int
    switch: bool

    def own(self, path: Path) -> None:
        if self.switch:
            os.chown(path, self.uid, self.gid)


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


def accounts() -> tuple[Account, Account]:
    """The service's and the workers' users: dedicated ones as root, else the caller."""
    if os.geteuid() != 0:
        me = pwd.getpwuid(os.geteuid())
        caller = Account(me.pw_name, me.pw_uid, me.pw_gid, switch=False)
        return caller, caller
    found = []
    for name in (SERVICE_USER, WORKER_USER):
        try:
            entry = pwd.getpwnam(name)
        except KeyError:
            raise SystemExit(
                f"remote: as root, the service runs as the users {SERVICE_USER} and "
                f"{WORKER_USER}: there is no {name}; create it with `useradd --system "
                f"--user-group --no-create-home --shell /usr/sbin/nologin {name}` "
                "(./bazelw's root has both)"
            ) from None
        found.append(Account(name, entry.pw_uid, entry.pw_gid, switch=True))
    return found[0], found[1]


def private_dir(path: Path, owner: Account) -> Path:
    """A new directory only `owner` may enter."""
    path.mkdir(mode=0o700)
    owner.own(path)
    return path


def write_private(path: Path, text: str, owner: Account | None = None) -> None:
    """Writes a 0600 file whole: a temporary file, then a rename."""
    partial = path.with_name(path.name + ".partial")
    partial.unlink(missing_ok=True)
    descriptor = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w") as out:
        out.write(text)
    if owner:
        owner.own(partial)
    partial.replace(path)


def sign(secret: str, subject: str) -> str:
    return jwt.encode(
        {"sub": subject, "exp": int(time.time()) + TOKEN_LIFETIME_S}, secret, algorithm="HS256"
    )


def client_secret(token_dir: Path) -> str:
    """The signing secret of this caller's services, made once and kept in token_dir.

    Kept, so that a Bazel server that cached the client token keeps working across restarts.
    Writes a fresh client token there for tools/remote/credential_helper.py.
    """
    token_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    status = token_dir.stat()
    if status.st_uid != os.geteuid() or status.st_mode & 0o077:
        raise SystemExit(f"remote: {token_dir} must be yours and 0700 (it holds the token)")
    secret_file = token_dir / "secret"
    if not secret_file.exists():
        write_private(secret_file, secrets.token_hex(32))
    secret = secret_file.read_text().strip()
    write_private(token_dir / TOKEN_FILE, sign(secret, CLIENT_SUBJECT))
    return secret


def self_signed_tls(host: str, key_file: Path, cert_file: Path, owner: Account) -> None:
    """A key and a certificate for `host`, for the workers' TLS channel.

    buildbox sends a token only over TLS, so the workers reach BuildGrid on a second port that
    speaks TLS with this certificate, which they trust by name (--*-server-cert).
    """
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "remote-local")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(seconds=TOKEN_LIFETIME_S))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(host))]),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    pem_key = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    write_private(key_file, pem_key.decode(), owner)
    write_private(cert_file, cert.public_bytes(serialization.Encoding.PEM).decode(), owner)


def unreachable_by_others(path: Path) -> Path | None:
    """The first directory above `path` that other users may not enter, if any."""
    for parent in reversed(path.parents):
        if not parent.stat().st_mode & 0o001:
            return parent
    return None


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
        self.logs.mkdir(mode=0o700, exist_ok=True)
        self.children: list[Child] = []
        # The database's and casd's sockets: short paths under /tmp, whatever the state
        # directory is (a Unix socket's path has at most 107 bytes), each in a 0700 directory
        # of its user. Nothing there outlives a run: the action cache is in memory, and the CAS
        # on disk keeps nothing in the database.
        self.run_dir = Path(tempfile.mkdtemp(prefix="remote-local-run-", dir="/tmp"))
        self.run_dir.chmod(0o711)

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


def capabilities_answered(address: str, token: str) -> bool:
    with grpc.insecure_channel(address) as channel:
        stub = remote_execution_pb2_grpc.CapabilitiesStub(channel)
        try:
            stub.GetCapabilities(
                remote_execution_pb2.GetCapabilitiesRequest(),
                timeout=1,
                metadata=[("authorization", f"Bearer {token}")],
            )
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
    parser.add_argument(
        "--token_dir",
        type=Path,
        default=default_token_dir(),
        help="gets the client token (default: where Bazel's credential helper reads it)",
    )
    args = parser.parse_args()
    if not 0 <= args.port <= 65535 or args.workers < 1:
        parser.error("--port must be 0..65535 and --workers at least 1")

    tools, postgres_bin = find_tools()
    service_account, worker_account = accounts()
    port = args.port or free_port()
    if port_in_use(port):
        print(f"remote: 127.0.0.1:{port} is already in use; pass --port", file=sys.stderr)
        return 2
    address = f"127.0.0.1:{port}"
    endpoint = f"grpc://{address}"
    worker_address = f"127.0.0.1:{free_port()}"  # TLS, for casd and the workers

    if args.state_dir:
        args.state_dir.mkdir(parents=True, exist_ok=True)
        if any(args.state_dir.iterdir()):
            print(f"remote: --state_dir {args.state_dir} is not empty", file=sys.stderr)
            return 2
        state_dir, temporary = args.state_dir.resolve(), False
    else:
        state_dir, temporary = Path(tempfile.mkdtemp(prefix="remote-local-")), True
    if service_account.switch:
        blocked = unreachable_by_others(state_dir)
        if blocked:
            print(
                f"remote: --state_dir {state_dir}: the service users cannot enter {blocked}; "
                "pick a directory whose parents others may enter (o+x)",
                file=sys.stderr,
            )
            return 2
        # Others may pass through, to their own 0700 directories; the logs stay root's.
        state_dir.chmod(0o711)
    secret = client_secret(args.token_dir)
    client_token = sign(secret, CLIENT_SUBJECT)

    stopping: list[int] = []
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda signum, _frame: stopping.append(signum))

    service = Service(state_dir)
    failed = False
    try:
        # As root, each part gets the bare environment of its user, and BuildGrid runs from a
        # copy its user can read; otherwise the parts are the caller's, with its environment.
        config_dir = private_dir(state_dir / "buildgrid", service_account)
        worker_dir = private_dir(state_dir / "worker", worker_account)
        buildgrid_bin = BUILDGRID
        service_env: dict[str, str] | None = None
        worker_env: dict[str, str] | None = None
        if service_account.switch:
            code = readable_runfiles(service.run_dir)
            buildgrid_bin = str(code / "_main/tools/remote/buildgrid")
            service_env = {"PATH": CHILD_PATH, "HOME": str(config_dir), "RUNFILES_DIR": str(code)}
            worker_env = {"PATH": CHILD_PATH, "HOME": str(worker_dir)}
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
        worker_cert = worker_dir / "server.crt"
        write_private(worker_cert, tls_cert.read_text(), worker_account)
        cas_dir = private_dir(state_dir / "cas", service_account)
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
                cas_dir=cas_dir,
                secret_file=secret_file,
                acl_file=acl_file,
            ),
            service_account,
        )
        buildgrid = service.spawn(
            "buildgrid",
            [buildgrid_bin, "server", "start", str(config)],
            service_account,
            service_env,
        )
        service.wait_until(
            buildgrid, lambda: capabilities_answered(address, client_token), "gRPC answer"
        )

        worker_token = worker_dir / "token"
        write_private(worker_token, sign(secret, WORKER_SUBJECT), worker_account)
        casd_socket = private_dir(service.run_dir / "casd", worker_account) / "casd.sock"
        casd = service.spawn(
            "casd",
            [
                tools["buildbox-casd"],
                f"--cas-remote=https://{worker_address}",
                f"--cas-server-cert={worker_cert}",
                f"--cas-access-token={worker_token}",
                f"--bind=unix:{casd_socket}",
                str(worker_dir / "casd"),
            ],
            worker_account,
            worker_env,
        )
        service.wait_until(casd, casd_socket.exists, "socket")

        isa = ISA_NAMES.get(platform.machine(), platform.machine())
        for number in range(1, args.workers + 1):
            service.spawn(
                f"worker-{number}",
                [
                    tools["buildbox-worker"],
                    f"--bots-remote=https://{worker_address}",
                    f"--bots-server-cert={worker_cert}",
                    f"--bots-access-token={worker_token}",
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

        if args.ready_file:
            partial = args.ready_file.with_name(args.ready_file.name + ".partial")
            partial.write_text(endpoint + "\n")
            partial.replace(args.ready_file)
        flag = "" if port == DEFAULT_PORT else f" --remote_cache={endpoint}"
        users = (
            f"BuildGrid as {service_account.name}, actions as {worker_account.name}"
            if service_account.switch
            else f"everything as {service_account.name}"
        )
        print(
            f"remote: ready on {endpoint}: BuildGrid, {args.workers} buildbox worker(s) "
            f"({users}), state in {state_dir}\n"
            f"remote: clients need the token in {args.token_dir / TOKEN_FILE} "
            "(.bazelrc's credential helper reads it)\n"
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
