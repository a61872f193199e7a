"""What the manifest tests share: the schema and cross-field checks of a rendered manifest, and
a TestCase base that runs the generator (bazel/tools/cloud_run_manifest.py) on the rule's
settings (:generator_test_settings) and an environment file, as the rule's action does.

Used by manifest_test (the rendered manifest), manifest_refusals_test (what the generator
refuses) and manifest_environments_test (environment files and their services keys).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import ClassVar

import jsonschema
import yaml
from absl.testing import absltest

SCHEMA = json.loads(Path(os.environ["SCHEMA"]).read_text())
IMAGE_REFERENCE = re.compile(
    r"^(?P<host>[a-z0-9.-]+(:[0-9]+)?)/(?P<path>[a-z0-9._/-]+)@(?P<digest>sha256:[0-9a-f]{64})$"
)


def schema_problems(document: dict) -> list[str]:
    validator = jsonschema.Draft202012Validator(SCHEMA)
    return [
        f"{'/'.join(map(str, error.absolute_path))}: {error.message}"
        for error in validator.iter_errors(document)
    ]


def cross_field_problems(document: dict, digest: str) -> list[str]:
    problems = []
    revision = document["spec"]["template"]
    container, *sidecars = revision["spec"]["containers"]
    problems += sidecar_problems(revision)
    (port,) = container["ports"]
    if port["name"] != "h2c":
        problems.append(f"port is named {port['name']!r}: gRPC needs h2c end to end")
    for kind in ("startupProbe", "livenessProbe"):
        probe = container[kind]
        if probe["grpc"]["port"] != port["containerPort"]:
            problems.append(f"{kind} asks port {probe['grpc']['port']}, not the served one")
        if probe["grpc"]["service"] != "":
            problems.append(f"{kind} asks health service {probe['grpc']['service']!r}, not ''")
        if probe["periodSeconds"] * probe["failureThreshold"] > 240:
            problems.append(f"{kind} gives up after more than 240 s")
        if probe["timeoutSeconds"] > probe["periodSeconds"]:
            problems.append(f"{kind} timeout longer than its period")
    reference = IMAGE_REFERENCE.match(container["image"])
    if not reference:
        problems.append(f"image {container['image']!r} is not pinned by digest")
    elif reference["digest"] != digest:
        problems.append(f"image digest {reference['digest']} is not the built {digest}")
    scale = revision["metadata"]["annotations"]
    if int(scale["autoscaling.knative.dev/minScale"]) > int(
        scale["autoscaling.knative.dev/maxScale"]
    ):
        problems.append("minScale above maxScale")
    cpu = container["resources"]["limits"]["cpu"]
    if cpu.endswith("m") and revision["spec"]["containerConcurrency"] != 1:
        problems.append("cpu below 1 with concurrency above 1")
    if cpu.endswith("m") and scale["run.googleapis.com/cpu-throttling"] == "false":
        problems.append("cpu below 1 always allocated")
    names = [entry["name"] for entry in container.get("env", [])]
    if len(names) != len(set(names)):
        problems.append(f"env names repeat: {names}")
    volumes = {v["name"] for v in revision["spec"].get("volumes", [])}
    mounted = set()
    for each in [container, *sidecars]:
        mounts = {m["name"]: m["mountPath"] for m in each.get("volumeMounts", [])}
        mounted |= set(mounts)
        if len(set(mounts.values())) != len(mounts):
            problems.append("two volumes mounted at one path")
    if mounted != volumes:
        problems.append(f"volume mounts {sorted(mounted)} do not match volumes {sorted(volumes)}")
    interfaces = scale.get("run.googleapis.com/network-interfaces")
    if interfaces is not None:
        parsed = json.loads(interfaces)
        if not (
            isinstance(parsed, list)
            and len(parsed) == 1
            and set(parsed[0]) <= {"network", "subnetwork"}
            and parsed[0]
        ):
            problems.append(f"network-interfaces {interfaces} is not one network and subnet")
    egress = "run.googleapis.com/vpc-access-egress" in scale
    if egress and interfaces is None and "run.googleapis.com/vpc-access-connector" not in scale:
        problems.append("VPC egress without a network or connector")
    return problems


def sidecar_problems(revision: dict) -> list[str]:
    """Cloud Run's rules of a revision with sidecars: containers named, one after its startup
    dependencies, each of them probed at startup (else Cloud Run cannot tell they are up)."""
    containers = revision["spec"]["containers"]
    dependencies = revision["metadata"]["annotations"].get(
        "run.googleapis.com/container-dependencies"
    )
    if len(containers) == 1:
        return [] if dependencies is None else ["container dependencies without sidecars"]
    problems = []
    names = [each.get("name") for each in containers]
    if None in names or len(set(names)) != len(names):
        problems.append(f"containers of a multi-container revision need distinct names: {names}")
    if any("ports" in each for each in containers[1:]):
        problems.append("a sidecar has a port: only the ingress container may")
    graph = json.loads(dependencies) if dependencies else {}
    for name, needs in graph.items():
        for need in [name, *needs]:
            if need not in names:
                problems.append(f"container-dependencies names {need!r}, not a container")
        for need in needs:
            if need in names and "startupProbe" not in containers[names.index(need)]:
                problems.append(f"{name} waits for {need}, which has no startup probe")
    return problems


DIGEST = "sha256:" + "a" * 64
PREFIX = "cloud_run_manifest: bad settings (environment "


def problems_of(result) -> list[str]:
    """The generator's problem lines, without the prefix that names the environment file."""
    lines = result.stderr.splitlines()
    assert all(line.startswith(PREFIX) for line in lines), result.stderr
    return [line.split("): ", 1)[1] for line in lines]


class GeneratorTestCase(absltest.TestCase):
    """Runs the generator; the test methods are its subclasses'."""

    # What the rule passes: every attribute (the defaults are the rule's own, written once),
    # from :generator_test_manifest (service ping, project kit-test-project, region
    # europe-west1, repository services, env GREETING=hello).
    SETTINGS: ClassVar[dict] = json.loads(Path(os.environ["SETTINGS"]).read_text())

    def generate(self, settings: dict, environment: object = None):
        directory = Path(tempfile.mkdtemp(dir=os.environ.get("TEST_TMPDIR")))
        (directory / "settings.json").write_text(json.dumps(settings))
        (directory / "image.digest").write_text(DIGEST + "\n")
        args = [
            os.environ["GENERATOR"],
            "--settings", str(directory / "settings.json"),
            "--digest_file", str(directory / "image.digest"),
            "--out", str(directory / "service.yaml"),
        ]  # fmt: skip
        if environment is not None:
            (directory / "environment.json").write_text(json.dumps(environment))
            args += ["--environment", str(directory / "environment.json")]
        result = subprocess.run(args, capture_output=True, text=True, check=False)
        out = directory / "service.yaml"
        return result, yaml.safe_load(out.read_text()) if out.exists() else None

    def generate_valid(self, settings: dict, environment: object = None) -> dict:
        result, document = self.generate(settings, environment)
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertEqual(result.stderr, "")
        self.assertEqual(schema_problems(document), [])
        self.assertEqual(cross_field_problems(document, DIGEST), [])
        return document

    def generator_check(
        self,
        check: str,
        environments: dict[str, object],
        service_args: Callable[[Path], list[str]],
    ) -> tuple[int, list[str], bool]:
        """The generator's `check` action (`--check_service_keys`, `--check_collisions`) over
        these environment files (name -> JSON): its exit code, its stderr lines (paths made
        relative) and whether it wrote its stamp. `service_args(directory)` names the services."""
        directory = Path(tempfile.mkdtemp(dir=os.environ.get("TEST_TMPDIR")))
        args = [os.environ["GENERATOR"], check]
        for name, environment in environments.items():
            (directory / name).write_text(json.dumps(environment))
            args.append(str(directory / name))
        args += service_args(directory)
        args += ["--out", str(directory / "checked")]
        result = subprocess.run(args, capture_output=True, text=True, check=False)
        self.assertNotIn("Traceback", result.stderr)
        lines = [line.replace(f"{directory}/", "") for line in result.stderr.splitlines()]
        return result.returncode, lines, (directory / "checked").exists()

    def check_service_keys(self, environments: dict[str, object], services: list[str]):
        """The generator's --check_service_keys of these files for `services`."""
        return self.generator_check(
            "--check_service_keys",
            environments,
            lambda _: [arg for service in services for arg in ("--service", service)],
        )

    def refused(self, settings: dict, environment: object = None) -> list[str]:
        result, document = self.generate(settings, environment)
        self.assertEqual(result.returncode, 2, result.stderr)
        self.assertIsNone(document)
        self.assertNotIn("Traceback", result.stderr)
        return problems_of(result)
