"""`./bazelw run //deploy:local`: every service of this repository running as Cloud Run would
run it, on this machine. It starts a registry (Debian's docker-registry) and the local Cloud
Run (//tools/cloud_run:local) on loopback, releases every service to them with the real release
tool (//deploy:release: the push, a revision under the `candidate` tag, its smoke test, then
all traffic), prints each service's local URL, and serves until Ctrl-C or SIGTERM.

The release authenticates with Application Default Credentials, as against Cloud Run; here
they are the service-account key that the local Cloud Run wrote for its starter (readable by
that user only; its path is in the ready file), whose token_uri is the local Cloud Run's
stand-in token endpoint (tools/cloud_run/tokens.py). No Google account is needed or used.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

import google.auth.transport.requests
from absl import app, flags
from google.oauth2 import service_account

_ENVIRONMENT = flags.DEFINE_string(
    "environment",
    "local",
    "Whose manifests: deploy/environments/NAME.json. `local` names the local URLs (the "
    "relay's upstream) at the default --front_end_port.",
)
_API_PORT = flags.DEFINE_integer("api_port", 8180, "The local Cloud Run's Admin API port.")
_FRONT_END_PORT = flags.DEFINE_integer("front_end_port", 8181, "The front end's port.")
_REGISTRY_PORT = flags.DEFINE_integer("registry_port", 0, "The registry's port (0: any free).")
_STATE_DIR = flags.DEFINE_string(
    "state_dir", None, "Registry storage, images, revisions (default: a new temp dir)."
)
_RELEASE = flags.DEFINE_string("release", None, "The release tool's launcher (set by the BUILD).")
_LOCAL_CLOUD_RUN = flags.DEFINE_string(
    "local_cloud_run", None, "//tools/cloud_run:local (set by the BUILD)."
)
_EXIT_AFTER_RELEASE = flags.DEFINE_bool(
    "exit_after_release", False, "Stop everything once released (for tests)."
)
START_TIMEOUT_SECONDS = 60


class Failed(Exception):
    """One line for the user; exit 1."""


def write_atomically(path: Path, text: str, mode: int = 0o600) -> None:
    with tempfile.NamedTemporaryFile("w", dir=path.parent, delete=False) as temporary:
        os.chmod(temporary.name, mode)
        temporary.write(text)
    os.replace(temporary.name, path)


def wait_until(ready: Callable[[], bool], process: subprocess.Popen, what: str) -> None:
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    while not ready():
        if process.poll() is not None:
            raise Failed(f"{what} exited with status {process.returncode}")
        if time.monotonic() > deadline:
            raise Failed(f"{what} did not start in {START_TIMEOUT_SECONDS} s")
        time.sleep(0.1)


def start_registry(state: Path) -> tuple[subprocess.Popen, str]:
    binary = shutil.which("docker-registry")
    if binary is None:
        raise Failed(
            "no docker-registry: install Debian's docker-registry package (./bazelw's root has it)"
        )
    port = _REGISTRY_PORT.value or free_port()
    host = f"127.0.0.1:{port}"
    config = {
        "version": 0.1,
        "log": {"level": "warn", "accesslog": {"disabled": True}},
        "storage": {"filesystem": {"rootdirectory": str(state / "registry")}},
        "http": {"addr": host},
    }
    write_atomically(state / "registry.json", json.dumps(config), 0o644)  # JSON is YAML
    with (state / "registry.log").open("ab") as log:  # its own log: a push's 404s are normal
        process = subprocess.Popen(
            [binary, "serve", str(state / "registry.json")],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
        )

    def answers() -> bool:
        try:
            urllib.request.urlopen(f"http://{host}/v2/", timeout=1).close()
            return True
        except (urllib.error.URLError, OSError):
            return False

    wait_until(answers, process, "docker-registry")
    return process, host


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start_local_cloud_run(state: Path) -> tuple[subprocess.Popen, str, Path]:
    """The process, its API's URL and the key file that API's tokens are granted to."""
    ready = state / "cloud_run.ready.json"
    process = subprocess.Popen(
        [
            os.path.abspath(_LOCAL_CLOUD_RUN.value),
            f"--api_port={_API_PORT.value}",
            f"--front_end_port={_FRONT_END_PORT.value}",
            f"--state_dir={state / 'cloud_run'}",
            f"--ready_file={ready}",
        ],
        stdin=subprocess.DEVNULL,
    )
    wait_until(ready.exists, process, "the local Cloud Run")
    ready_document = json.loads(ready.read_text())
    return process, ready_document["api"], Path(ready_document["key_file"])


def release(state: Path, api: str, key_file: Path, registry: str) -> dict:
    """Runs the release tool (progress on stderr, as it prints it); its JSON report."""
    environment = {k: v for k, v in os.environ.items() if not k.startswith("GOOGLE_")}
    environment |= {
        "GOOGLE_APPLICATION_CREDENTIALS": str(key_file),
        "NO_GCE_CHECK": "True",  # no metadata server to wait for
        "BUILD_WORKING_DIRECTORY": str(state),
    }
    done = subprocess.run(
        [
            os.path.abspath(_RELEASE.value),
            f"--environment={_ENVIRONMENT.value}",
            f"--api_endpoint={api}",
            f"--repository={registry}/local",
            "--traffic_steps=100",
            "--step_wait=0",
            "--poll_interval=0.5",
            "--json",
        ],
        env=environment,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        text=True,
        check=False,
    )
    try:
        report = json.loads(done.stdout)
    except ValueError:
        raise Failed(f"the release exited {done.returncode} without a report") from None
    if done.returncode != 0:
        failed = [f"{s['name']}: {s['error']}" for s in report["services"] if s.get("error")]
        raise Failed("the release failed: " + "; ".join(failed))
    return report


def urls(api: str, key_file: Path, report: dict) -> list[tuple[str, str]]:
    """(service, URL) of each released service, from the local Admin API."""
    credentials = service_account.Credentials.from_service_account_file(
        str(key_file), scopes=["https://www.googleapis.com/auth/cloud-platform"]
    )
    credentials.refresh(google.auth.transport.requests.Request())
    found = []
    for service in report["services"]:
        request = urllib.request.Request(
            f"{api}/apis/serving.knative.dev/v1/namespaces/{service['project']}/services/{service['name']}",
            headers={"Authorization": f"Bearer {credentials.token}"},
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            found.append((service["name"], json.loads(response.read())["status"]["url"]))
    return found


def main(argv: list[str]) -> int:
    if len(argv) > 1:
        print(f"local: unexpected arguments: {' '.join(argv[1:])}", file=sys.stderr)
        return 2
    # A temp dir of its own is removed at the end; --state_dir is kept (pulled images too).
    state = Path(_STATE_DIR.value or tempfile.mkdtemp(prefix="deploy-local."))
    state.mkdir(parents=True, exist_ok=True)
    processes: list[subprocess.Popen] = []
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    try:
        registry_process, registry = start_registry(state)
        processes.append(registry_process)
        cloud_run_process, api, key_file = start_local_cloud_run(state)
        processes.insert(0, cloud_run_process)  # stopped first: its instances drain
        report = release(state, api, key_file, registry)
        for name, url in urls(api, key_file, report):
            print(f"local: {name} {url}", flush=True)
        print(
            "local: connect to 127.0.0.1 at the URL's port, with the URL's host as the "
            "authority (docs/local-cloud-run.md); Ctrl-C stops everything",
            flush=True,
        )
        # Private unless a manifest says public, as on Cloud Run: the front end wants an ID
        # token whose audience is the URL, which this key's holder can get.
        print(
            f"local: the services want an ID token for their URL: with "
            f"GOOGLE_APPLICATION_CREDENTIALS={key_file}, the client's --auth "
            "--audience=URL gets one",
            flush=True,
        )
        if not _EXIT_AFTER_RELEASE.value:
            stop.wait()
        return 0
    except Failed as error:
        print(f"local: {error}", file=sys.stderr)
        return 1
    finally:
        stopped = True
        for process in processes:
            process.terminate()
            try:
                process.wait(60)
            except subprocess.TimeoutExpired:
                stopped = False
                print(f"local: process {process.pid} did not stop; {state} kept", file=sys.stderr)
        if stopped and not _STATE_DIR.value:
            shutil.rmtree(state)


if __name__ == "__main__":
    app.run(main)
