"""A service's image run as Cloud Run runs it, before any deploy: the test every
cloud_run_service gets (cloud_run_image_test).

Tests pass against the whole pip hub and the workspace; the image holds only its layers. What
the image lacks (a package, a generated module, a data file) shows up on Cloud Run as a crash
at the first start. So the image itself is run, with runc, as Cloud Run would: read-only root,
its non-root user, `$PORT`. One run imports every module of the app layer with the image's own
interpreter; another serves until SERVING, lists its services through reflection (each service
the binary's gRPC libraries define must be there), and stops on SIGTERM with exit status 0.

Environment (set by the rule): IMAGE, the OCI layout; APP_LAYER_PATHS, the app layer's file
list; SERVICE_DESCRIPTORS, descriptor sets of the protos whose services the binary serves.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import tempfile
from pathlib import Path

import grpc
from absl.testing import absltest
from google.protobuf import descriptor_pb2
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from bazel.tools.container_checks import (
    RECONNECT_OPTIONS,
    root_is_read_only,
    uids,
    wait_for_serving,
)
from bazel.tools.oci_layout import Layout
from bazel.tools.oci_runtime import (
    Bundle,
    Container,
    RuncUnavailable,
    enter_root_mount,
    why_runc_cannot_run,
)

SERVING_TIMEOUT_SECONDS = 60
STOP_TIMEOUT_SECONDS = 30

# Run by the image's interpreter with the module names as argv[1]: imports each, reports.
IMPORT_EVERY_MODULE = """
import importlib, json, os, sys, traceback
failed = []
for name in json.loads(sys.argv[1]):
    try:
        importlib.import_module(name)
    except BaseException as error:
        failed.append(name + ": " + "".join(traceback.format_exception_only(error)).strip())
print(json.dumps({"uid": os.getuid(), "failed": failed}))
"""


def runfile(path: str) -> Path:
    """A file of the test's runfiles, by its path there (`_main/...`, as the rule names it)."""
    return Path(os.environ["TEST_SRCDIR"]) / path


def scratch_dir() -> Path:
    return Path(tempfile.mkdtemp(dir=os.environ.get("TEST_TMPDIR")))


def free_port() -> int:
    """A port that was free a moment ago, for the server to bind."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def module_names(paths: list[str], pythonpath: list[str]) -> list[str]:
    """The module each .py file of the app layer is imported as: its path below the deepest
    PYTHONPATH entry holding it (generated stubs sit under their own entry), dotted."""
    roots = sorted((root.strip("/") + "/" for root in pythonpath if root), key=len, reverse=True)
    names = []
    for path in sorted(p for p in paths if p.endswith(".py")):
        root = next((r for r in roots if path.startswith(r)), None)
        if root is None:
            raise ValueError(f"/{path} is on no PYTHONPATH entry of the image ({pythonpath})")
        parts = path[len(root) : -len(".py")].split("/")
        if parts[-1] == "__init__":
            parts.pop()
        if parts and all(part.isidentifier() for part in parts):
            names.append(".".join(parts))
    return names


def expected_services(descriptor_sets: list[Path]) -> set[str]:
    """Full names of the services the descriptor sets define."""
    services = set()
    for path in descriptor_sets:
        files = descriptor_pb2.FileDescriptorSet.FromString(path.read_bytes()).file
        for file in files:
            prefix = f"{file.package}." if file.package else ""
            services.update(prefix + service.name for service in file.service)
    return services


class ImageTest(absltest.TestCase):
    bundle: Bundle

    @classmethod
    def setUpClass(cls) -> None:
        unavailable = why_runc_cannot_run()
        if unavailable is None:
            try:
                enter_root_mount(scratch_dir())  # before any gRPC thread: unshare needs one
            except (RuncUnavailable, OSError) as error:
                unavailable = str(error)
        if unavailable:
            raise AssertionError(f"cannot run the image with runc: {unavailable}")
        cls.bundle = Bundle(Layout(runfile(os.environ["IMAGE"])), scratch_dir() / "bundle")

    def image_env(self) -> dict[str, str]:
        return dict(entry.split("=", 1) for entry in self.bundle.image_config.get("Env") or [])

    def test_every_module_of_the_app_layer_imports_in_the_image(self) -> None:
        paths = json.loads(runfile(os.environ["APP_LAYER_PATHS"]).read_text())
        names = module_names(list(paths), self.image_env().get("PYTHONPATH", "").split(":"))
        self.assertTrue(names, "the app layer has no Python module")
        interpreter = self.bundle.image_config["Entrypoint"][0]
        # As the image runs (user, environment, read-only root), but the interpreter on the
        # import script instead of the entrypoint: `args` would go after the entrypoint.
        config = self.bundle.configure({"PORT": str(free_port())})
        config["process"]["args"] = [interpreter, "-c", IMPORT_EVERY_MODULE, json.dumps(names)]
        (self.bundle.directory / "config.json").write_text(json.dumps(config))
        logs = scratch_dir()
        with (
            open(logs / "stdout", "w+", encoding="utf-8") as stdout,
            open(logs / "stderr", "w+", encoding="utf-8") as stderr,
            Container(self.bundle, scratch_dir(), stdout, stderr) as container,
        ):
            returncode = container.start().wait(SERVING_TIMEOUT_SECONDS)
            stdout.seek(0)
            stderr.seek(0)
            output, errors = stdout.read(), stderr.read()
        self.assertEqual(returncode, 0, f"the image's {interpreter} failed:\n{errors}")
        report = json.loads(output.strip().splitlines()[-1])
        self.assertNotEqual(report["uid"], 0, "the image must run as a non-root user")
        self.assertEqual(report["failed"], [], f"modules of {len(names)} that do not import")

    def test_serves_its_services_and_stops_on_sigterm(self) -> None:
        expected = expected_services(
            [runfile(path) for path in os.environ["SERVICE_DESCRIPTORS"].split()]
        )
        self.assertTrue(expected, "the binary depends on no py_grpc_library: no service to check")
        port = free_port()
        self.bundle.configure({"PORT": str(port)})
        logs = scratch_dir()
        with (
            open(logs / "stdout", "w+", encoding="utf-8") as stdout,
            open(logs / "stderr", "w+", encoding="utf-8") as stderr,
            Container(self.bundle, scratch_dir(), stdout, stderr) as container,
        ):
            with grpc.insecure_channel(f"127.0.0.1:{port}", RECONNECT_OPTIONS) as channel:
                container.start()
                wait_for_serving(container, channel, stderr, SERVING_TIMEOUT_SECONDS)
                pid = container.state()["pid"]
                self.assertNotEqual(uids(pid)[1], 0, "the server must not run as root")
                self.assertTrue(root_is_read_only(pid), "the root filesystem must be read-only")
                listed = self.list_services(channel)
            missing = sorted(expected - listed)
            self.assertEqual(missing, [], f"not served, though the binary defines them: {listed}")
            container.kill(signal.SIGTERM)
            returncode = container.process.wait(STOP_TIMEOUT_SECONDS)
            stderr.seek(0)
            self.assertEqual(returncode, 0, f"exit status after SIGTERM; stderr:\n{stderr.read()}")

    def list_services(self, channel: grpc.Channel) -> set[str]:
        stub = reflection_pb2_grpc.ServerReflectionStub(channel)
        request = reflection_pb2.ServerReflectionRequest(list_services="")
        (response,) = list(stub.ServerReflectionInfo(iter([request]), timeout=10))
        return {service.name for service in response.list_services_response.service}


if __name__ == "__main__":
    absltest.main()
