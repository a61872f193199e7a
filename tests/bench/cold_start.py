"""Cold start: `./bazelw run //tests/bench:cold_start`. Prints numbers; asserts nothing.

For the kit's test service's image (//tests/services/kittest:kittest_image; until issue 25 the
samples' images, ping's and route_guide's), unpacked once into an OCI bundle and run by `runc`
as image_run_test runs it (uid 65532, read-only root, host network, PORT set): the time from
just before `runc run` to health SERVING, min/median/max of --runs starts. Beside it: the same
server's start as `bazel run` starts it (the py_binary from its runfiles), and the floor of any
Python image, `runc run` of `python3.13 -c pass` to its exit.

Then, once per image, where the time goes: the start's phases measured inside the container
(start_phases.py: imports, flags, logging set-up, services(), the server's build and start),
and the slowest imports by `python3.13 -X importtime`.

The clock starts after the health probe's gRPC is imported; the probe tries every 2 ms, each
time on a new channel (reconnect backoff options at 5 ms as well): gRPC's default backoff (1 s
after the first refused connection) would round every figure up to the next second, and even
at 5 ms one waiting channel saw SERVING up to 100 ms late.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO

import grpc
from absl import app, flags
from grpc_health.v1 import health_pb2, health_pb2_grpc

from bazel.tools.oci_layout import Layout, image_outputs
from bazel.tools.oci_runtime import Bundle, Container, enter_root_mount, why_runc_cannot_run

_RUNS = flags.DEFINE_integer("runs", 5, "Starts timed per image and per binary.")
_TOP = flags.DEFINE_integer("top", 12, "Slowest imports shown per image (-X importtime).")
_DETAILS = flags.DEFINE_bool("details", True, "Also the phases and the slowest imports.")
_WITHOUT_BYTECODE = flags.DEFINE_bool(
    "without_bytecode", True, "Also each image with its .pyc deleted (the start before them)."
)
LAZY = "google.auth, requests, cryptography"

PROBE_OPTIONS = [
    ("grpc.initial_reconnect_backoff_ms", 5),
    ("grpc.min_reconnect_backoff_ms", 5),
    ("grpc.max_reconnect_backoff_ms", 10),
]
SERVING_TIMEOUT_SECONDS = 60
SERVING = health_pb2.HealthCheckResponse.SERVING


@dataclasses.dataclass(frozen=True)
class Service:
    name: str
    image_var: str  # $(rootpaths) of its oci_image
    binary_var: str  # $(rootpath) of its py_binary
    module: str  # its main module, as the image's PYTHONPATH names it


SERVICES = [
    Service("kittest", "KITTEST_IMAGE", "KITTEST_SERVER_BIN", "tests.services.kittest.main"),
]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def time_to_serving(port: int, start: Callable[[], subprocess.Popen]) -> float:
    """Seconds from just before `start()` to health SERVING on `port`.

    Each attempt is a new channel (no reconnect backoff carried over), failing fast while the
    port is closed, 2 ms apart: one channel waiting for ready, even with its backoff options at
    5 ms, measured SERVING up to 100 ms after the server's own log line said it."""
    request = health_pb2.HealthCheckRequest()
    target = f"127.0.0.1:{port}"
    started = time.perf_counter()
    process = start()
    while True:
        with grpc.insecure_channel(target, PROBE_OPTIONS) as channel:
            try:
                if health_pb2_grpc.HealthStub(channel).Check(request, timeout=1).status == SERVING:
                    return time.perf_counter() - started
            except grpc.RpcError as error:
                if error.code() not in (
                    grpc.StatusCode.UNAVAILABLE,
                    grpc.StatusCode.DEADLINE_EXCEEDED,
                ):
                    raise
        if process.poll() is not None:
            raise RuntimeError(f"{process.args} exited with {process.returncode}")
        if time.perf_counter() - started > SERVING_TIMEOUT_SECONDS:
            raise RuntimeError(f"{process.args}: not SERVING in {SERVING_TIMEOUT_SECONDS} s")
        time.sleep(0.002)


class Runner:
    def __init__(self, scratch: Path) -> None:
        self.scratch = scratch
        self.state = Path(tempfile.mkdtemp(dir=scratch, prefix="runc-"))

    def container(self, bundle: Bundle, stderr: IO | int) -> Container:
        return Container(bundle, self.state, subprocess.DEVNULL, stderr)

    def image_start(self, bundle: Bundle, args: list[str] | None = None, **kw: Path) -> float:
        port = free_port()
        bundle.configure({"PORT": str(port)})
        if args:
            _set_args(bundle, args)
        with _stderr(kw.get("stderr")) as stderr, self.container(bundle, stderr) as container:
            seconds = time_to_serving(port, container.start)
            container.kill()
            container.process.wait(30)
            return seconds

    def run_to_exit(self, bundle: Bundle, args: list[str], stderr: Path | None = None) -> float:
        """Seconds from just before `runc run` to the container's exit (status 0)."""
        bundle.configure({})
        _set_args(bundle, args)
        with _stderr(stderr) as errors, self.container(bundle, errors) as container:
            started = time.perf_counter()
            code = container.start().wait(60)
            seconds = time.perf_counter() - started
        if code != 0:
            detail = stderr.read_text() if stderr else ""
            raise RuntimeError(f"{args} in the image exited with {code}: {detail}")
        return seconds


def _stderr(path: Path | None) -> contextlib.AbstractContextManager[IO | int]:
    return open(path, "w") if path else contextlib.nullcontext(subprocess.DEVNULL)


def _set_args(bundle: Bundle, args: list[str]) -> None:
    path = bundle.directory / "config.json"
    config = json.loads(path.read_text())
    config["process"]["args"] = args
    path.write_text(json.dumps(config))


def binary_start(binary: str) -> float:
    port = free_port()
    environment = {**os.environ, "PORT": str(port)}
    process: subprocess.Popen | None = None

    def start() -> subprocess.Popen:
        nonlocal process
        process = subprocess.Popen([binary], env=environment, stdout=subprocess.DEVNULL)
        return process

    try:
        return time_to_serving(port, start)
    finally:
        if process is not None:
            process.terminate()
            process.wait(30)


def spread(seconds: list[float]) -> str:
    ms = sorted(s * 1000 for s in seconds)
    return f"{ms[0]:5.0f} / {statistics.median(ms):5.0f} / {ms[-1]:5.0f}"


def slowest_imports(stderr: str, top: int) -> tuple[float, list[tuple[float, str]]]:
    """(total import time in ms, the `top` top-level imports by cumulative ms) from
    -X importtime's lines: `import time: self [us] | cumulative | imported package`."""
    total, outer = 0, []
    for line in stderr.splitlines():
        if not line.startswith("import time:") or "imported package" in line:
            continue
        fields = line.removeprefix("import time:").split("|")
        self_us, cumulative_us, name = int(fields[0]), int(fields[1]), fields[2]
        total += self_us
        if not name.startswith("  "):  # imported by no other module: a top-level import
            outer.append((cumulative_us / 1000, name.strip()))
    return total / 1000, sorted(outer, reverse=True)[:top]


def strip_bytecode(rootfs: Path) -> int:
    """Deletes every .pyc under `rootfs`; returns how many there were."""
    pycs = list(rootfs.rglob("*.pyc"))
    for pyc in pycs:
        pyc.unlink()
    return len(pycs)


def main(argv: list[str]) -> None:
    del argv
    reason = why_runc_cannot_run()
    if reason:
        sys.exit(f"cold_start: cannot run the images with runc: {reason}")
    runs = _RUNS.value
    phases_script = (Path(__file__).parent / "start_phases.py").read_text()
    # Where / is bound when it is not a mount (see enter_root_mount); it stays busy until
    # this process ends, so it lives outside the scratch directory that is removed at the end.
    root_mount = Path(tempfile.gettempdir()) / "cold-start-root"
    root_mount.mkdir(exist_ok=True)
    enter_root_mount(root_mount)  # before any gRPC thread
    with tempfile.TemporaryDirectory(prefix="cold-start-") as scratch_dir:
        scratch = Path(scratch_dir)
        runner = Runner(scratch)
        bundles = {
            s.name: Bundle(Layout(image_outputs(s.image_var)[0]), scratch / s.name)
            for s in SERVICES
        }
        print(
            f"Cold start, ms: min / median / max of {runs} starts, to health SERVING "
            f"(load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs)"
        )
        print(f"{'service':12} {'runc run (image)':>19} {'bazel run binary':>19}")
        for service in SERVICES:
            bundle = bundles[service.name]
            runner.image_start(bundle)  # warm the page cache: every start after is alike
            image = [runner.image_start(bundle) for _ in range(runs)]
            binary_path = str(Path(os.environ[service.binary_var]).resolve())
            binary_start(binary_path)
            binary = [binary_start(binary_path) for _ in range(runs)]
            print(f"{service.name:12} {spread(image):>19} {spread(binary):>19}")
        floor = bundles[SERVICES[0].name]
        interpreter = floor.image_config["Entrypoint"][0]
        python_exit = [runner.run_to_exit(floor, [interpreter, "-c", "pass"])]
        python_exit += [runner.run_to_exit(floor, [interpreter, "-c", "pass"]) for _ in range(runs)]
        print(f"floor: runc run of `{interpreter} -c pass` to its exit: {spread(python_exit[1:])}")
        if _WITHOUT_BYTECODE.value:
            for service in SERVICES:
                bundle = Bundle(bundles[service.name].layout, scratch / f"{service.name}-no-pyc")
                count = strip_bytecode(bundle.rootfs)
                if not count:
                    print(f"{service.name}: the image has no .pyc (no second measurement)")
                    continue
                runner.image_start(bundle)
                image = [runner.image_start(bundle) for _ in range(runs)]
                print(
                    f"{service.name:12} {spread(image):>19}  the same image without its "
                    f"{count} .pyc files"
                )
        if _DETAILS.value:
            for service in SERVICES:
                print()
                details(runner, bundles[service.name], service, phases_script)
        print(f"\nload average at the end: {os.getloadavg()[0]:.2f}")


def details(runner: Runner, bundle: Bundle, service: Service, phases_script: str) -> None:
    entrypoint = bundle.image_config["Entrypoint"]
    log = runner.scratch / f"{service.name}.phases"
    runner.run_to_exit(bundle, [entrypoint[0], "-c", phases_script, service.module], log)
    report = json.loads(log.read_text().splitlines()[-1])
    print(f"{service.name}: the start's phases inside the image (ms, one run)")
    for name, ms in report["phases"].items():
        print(f"  {ms:7.1f}  {name}")
    print(f"  modules loaded: {', '.join(report['loaded']) or 'none of ' + LAZY}")
    log = runner.scratch / f"{service.name}.importtime"
    runner.image_start(bundle, [entrypoint[0], "-X", "importtime", *entrypoint[1:]], stderr=log)
    total, top = slowest_imports(log.read_text(), _TOP.value)
    print(
        f"{service.name}: imports (-X importtime, one run, its own overhead included): "
        f"{total:.0f} ms in all; the slowest top-level ones, cumulative:"
    )
    for ms, name in top:
        print(f"  {ms:7.1f}  {name}")


if __name__ == "__main__":
    app.run(main)
