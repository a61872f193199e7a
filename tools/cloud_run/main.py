"""`bazel run //tools/cloud_run:local`: a local Cloud Run on loopback, for releases to aim at
and for developers to run every service as Cloud Run would. It serves the Admin API v1 subset
of api.py on one port and the h2c front end of front_end.py on another; each revision runs
under runc (runner.py). See docs/local-cloud-run.md, which lists how it differs from Cloud Run.

It runs as root (runc does): `./bazelw run` runs Bazel, and so this, as root. So its API is
for the user who started it only: at start it writes a fresh service-account key file (mode
0600 in a new 0700 directory) whose token_uri is the API's /token, and the API accepts only the
tokens granted to that key (tokens.py). Point GOOGLE_APPLICATION_CREDENTIALS at it.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
import tempfile
import threading
from pathlib import Path

from absl import app, flags

from bazel.tools.oci_runtime import RuncUnavailable, enter_root_mount, why_runc_cannot_run
from tools.cloud_run import api
from tools.cloud_run.controller import Controller
from tools.cloud_run.front_end import FrontEnd
from tools.cloud_run.metadata import MetadataServer

_API_PORT = flags.DEFINE_integer("api_port", 8180, "Admin API port on 127.0.0.1 (0: any free).")
_FRONT_END_PORT = flags.DEFINE_integer(
    "front_end_port", 8181, "h2c front end port on 127.0.0.1 (0: any free)."
)
_STATE_DIR = flags.DEFINE_string(
    "state_dir", None, "Where images are pulled and revisions unpacked (default: a new temp dir)."
)
_READY_FILE = flags.DEFINE_string(
    "ready_file",
    None,
    'Written (atomically) once serving: {"api": URL, "front_end_port": N, "key_file": PATH}.',
)
_STOP_GRACE_SECONDS = flags.DEFINE_float(
    "stop_grace_seconds", 10, "Between SIGTERM and SIGKILL when a revision stops (Cloud Run: 10)."
)


def write_atomically(path: Path, text: str) -> None:
    # NamedTemporaryFile creates its file 0600: only this user reads it, before and after.
    with tempfile.NamedTemporaryFile("w", dir=path.parent, delete=False) as temporary:
        temporary.write(text)
    os.replace(temporary.name, path)


def write_key_file(state_dir: Path, key: dict) -> Path:
    """The API's credential, in a new directory (mkdtemp makes it 0700) as a 0600 file."""
    path = Path(tempfile.mkdtemp(dir=state_dir, prefix="credentials.")) / "key.json"
    write_atomically(path, json.dumps(key))
    return path


def start_front_end(front_end: FrontEnd, port: int) -> int:
    """Runs the front end's event loop on a thread of its own; returns its port."""
    listening = threading.Event()
    failures: list[OSError] = []

    def run() -> None:
        try:
            asyncio.run(front_end.serve(port, listening))
        except OSError as error:
            failures.append(error)
            listening.set()

    threading.Thread(target=run, name="front end", daemon=True).start()
    listening.wait()
    if failures:
        raise failures[0]
    return front_end.port


def main(argv: list[str]) -> int:
    if len(argv) > 1:
        print(f"unexpected arguments: {' '.join(argv[1:])}", file=sys.stderr)
        return 2
    if reason := why_runc_cannot_run():
        print(f"local Cloud Run: {reason}", file=sys.stderr)
        return 1
    state_dir = Path(_STATE_DIR.value or tempfile.mkdtemp(prefix="local-cloud-run."))
    state_dir.mkdir(parents=True, exist_ok=True)
    try:
        # Before any thread: unshare needs a single-threaded process.
        enter_root_mount(Path(tempfile.mkdtemp(dir=state_dir, prefix="root.")))
    except (RuncUnavailable, OSError) as error:
        print(f"local Cloud Run: {error}", file=sys.stderr)
        return 1
    controller = Controller(state_dir, 0, _STOP_GRACE_SECONDS.value)
    front_end = FrontEnd(controller)
    try:
        controller.front_end_port = start_front_end(front_end, _FRONT_END_PORT.value)
        server, issuer = api.make_server(controller, _API_PORT.value)
        front_end.verify = issuer.verify_id_token
    except OSError as error:
        print(f"local Cloud Run: cannot listen: {error}", file=sys.stderr)
        return 1
    api_url = f"http://127.0.0.1:{server.server_address[1]}"
    key_file = write_key_file(state_dir, issuer.key_document())
    metadata = MetadataServer(issuer)
    metadata.start()
    controller.metadata_host = metadata.host
    print(
        f"local Cloud Run: Admin API {api_url}, for the holder of the key {key_file} "
        "(GOOGLE_APPLICATION_CREDENTIALS)",
        flush=True,
    )
    print(
        f"local Cloud Run: front end 127.0.0.1:{controller.front_end_port}, hosts "
        f"SERVICE.PROJECT.localhost and TAG---SERVICE.PROJECT.localhost; state in {state_dir}",
        flush=True,
    )
    print(f"local Cloud Run: metadata endpoint (ID tokens) {metadata.host}", flush=True)
    if _READY_FILE.value:
        ready = {
            "api": api_url,
            "front_end_port": controller.front_end_port,
            "key_file": str(key_file),
        }
        write_atomically(Path(_READY_FILE.value), json.dumps(ready))

    def stop(signum: int, _frame: object) -> None:
        print(f"local Cloud Run: {signal.Signals(signum).name}: stopping", flush=True)
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    server.serve_forever()
    server.server_close()
    controller.wait_idle()
    controller.close()
    metadata.stop()
    print("local Cloud Run: stopped", flush=True)
    return 0


if __name__ == "__main__":
    app.run(main)
