"""//deploy:manifest as Cloud Run would read it: a schema of every field the kit writes, then the
rules that span fields (the h2c port is the one the probes ask, probes give up within 240 s, the
image is pinned to the digest of //deploy:image). The generator refuses settings Cloud Run would
refuse and settings of the wrong type (one line each, exit 2, no traceback), and applies an
environment file over the rule's attributes."""

from __future__ import annotations

import copy
import json
import os
import re
import subprocess
import tempfile
from pathlib import Path
from typing import ClassVar

import jsonschema
import yaml
from absl.testing import absltest

from tests.deploy.oci_layout import image_outputs

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
    (container,) = revision["spec"]["containers"]
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
    return problems


class ManifestTest(absltest.TestCase):
    @classmethod
    def setUpClass(cls) -> None:
        cls.document = yaml.safe_load(Path(os.environ["MANIFEST"]).read_text())
        cls.digest = image_outputs("IMAGE")[1].read_text().strip()

    def test_kit_manifest_matches_the_schema(self) -> None:
        self.assertEqual(schema_problems(self.document), [])

    def test_kit_manifest_keeps_the_cross_field_rules(self) -> None:
        self.assertEqual(cross_field_problems(self.document, self.digest), [])
        container = self.document["spec"]["template"]["spec"]["containers"][0]
        self.assertEqual(container["ports"], [{"name": "h2c", "containerPort": 8080}])
        region = self.document["metadata"]["labels"]["cloud.googleapis.com/location"]
        self.assertTrue(container["image"].startswith(f"{region}-docker.pkg.dev/"))

    def test_the_checks_catch_broken_manifests(self) -> None:
        def broken(change) -> dict:
            document = copy.deepcopy(self.document)
            change(document["spec"]["template"]["spec"]["containers"][0], document)
            return document

        cases = {
            "port is named 'http1'": lambda c, d: c["ports"][0].update(name="http1"),
            "gives up after more than 240 s": lambda c, d: c["startupProbe"].update(
                periodSeconds=10
            ),
            "not pinned by digest": lambda c, d: c.update(image=c["image"].split("@")[0] + ":v1"),
            "is not the built": lambda c, d: c.update(
                image=c["image"].split("@")[0] + "@sha256:" + "0" * 64
            ),
            "not the served one": lambda c, d: c["livenessProbe"]["grpc"].update(port=9090),
        }
        for problem, change in cases.items():
            found = cross_field_problems(broken(change), self.digest)
            self.assertTrue(any(problem in p for p in found), (problem, found))
        extra = broken(lambda c, d: c.update(command=["sh"]))
        self.assertIn("Additional properties", " ".join(schema_problems(extra)))
        wrong_kind = broken(lambda c, d: d.update(kind="Deployment"))
        self.assertNotEqual(schema_problems(wrong_kind), [])


class GeneratorTest(absltest.TestCase):
    SETTINGS: ClassVar[dict] = {
        "service": "ping",
        "project": "kit-test-project",
        "region": "europe-west1",
        "repository": "services",
        "env": {"GREETING": "hello"},
    }

    def generate(self, settings: dict, environment: dict | None = None):
        directory = Path(tempfile.mkdtemp(dir=os.environ.get("TEST_TMPDIR")))
        (directory / "settings.json").write_text(json.dumps(settings))
        (directory / "image.digest").write_text("sha256:" + "a" * 64 + "\n")
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

    def test_environment_file_overrides_attributes(self) -> None:
        staging = json.loads(Path(os.environ["STAGING"]).read_text())
        result, document = self.generate(self.SETTINGS, {**staging, "env": {"MODE": "staging"}})
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertEqual(schema_problems(document), [])
        self.assertEqual(cross_field_problems(document, "sha256:" + "a" * 64), [])
        self.assertEqual(document["metadata"]["name"], staging["service"])
        annotations = document["spec"]["template"]["metadata"]["annotations"]
        self.assertEqual(annotations["autoscaling.knative.dev/maxScale"], str(staging["max_scale"]))
        container = document["spec"]["template"]["spec"]["containers"][0]
        self.assertEqual(
            container["env"],
            [{"name": "GREETING", "value": "hello"}, {"name": "MODE", "value": "staging"}],
        )
        self.assertEqual(
            container["image"],
            f"europe-west1-docker.pkg.dev/kit-test-project/services/{staging['service']}@sha256:"
            + "a" * 64,
        )

    def test_refuses_what_cloud_run_would_refuse_listing_every_problem(self) -> None:
        bad = {
            "startup_probe_period_seconds": 10,
            "max_scale": 0,
            "cpu": "500m",
            "memory": "8Gi",
            "env": {"PORT": "9090"},
        }
        result, document = self.generate(self.SETTINGS, bad)
        self.assertEqual(result.returncode, 2)
        self.assertIsNone(document)
        for problem in [
            "startup probe gives up after 300 s",
            "max_scale 0 must be at least 1",
            "cpu 500m below 1 needs container_concurrency 1",
            "memory 8Gi above 4Gi needs at least 2 cpu",
            "env PORT is set by Cloud Run itself",
        ]:
            self.assertIn(problem, result.stderr)

    def test_wrong_types_are_refused_one_line_each(self) -> None:
        bad = {
            "min_scale": "1",
            "startup_cpu_boost": "false",
            "custom_audiences": 5,
            "max_scale": True,
            "env": {"WORKERS": 2},
        }
        result, document = self.generate(self.SETTINGS, bad)
        self.assertEqual(result.returncode, 2, result.stderr)
        self.assertIsNone(document)
        self.assertNotIn("Traceback", result.stderr)
        prefix = "cloud_run_manifest: bad settings (environment "
        self.assertEqual(
            [line.split("): ", 1)[1] for line in result.stderr.splitlines()],
            [
                'min_scale in the environment file is "1": not an integer',
                'startup_cpu_boost in the environment file is "false": not true or false',
                "custom_audiences in the environment file is 5: not a list of strings",
                "max_scale in the environment file is true: not an integer",
                'env in the environment file is {"WORKERS": 2}: not an object of strings',
            ],
        )
        self.assertTrue(all(line.startswith(prefix) for line in result.stderr.splitlines()))

    def test_gen2_needs_512mi(self) -> None:
        result, document = self.generate(self.SETTINGS, {"memory": "256Mi"})
        self.assertEqual(result.returncode, 2, result.stderr)
        self.assertIsNone(document)
        self.assertIn(
            "memory 256Mi: execution environment gen2 needs at least 512Mi", result.stderr
        )
        gen1 = {"memory": "256Mi", "execution_environment": "gen1"}
        result, document = self.generate(self.SETTINGS, gen1)
        self.assertEqual(result.returncode, 0, result.stderr)
        limits = document["spec"]["template"]["spec"]["containers"][0]["resources"]["limits"]
        self.assertEqual(limits["memory"], "256Mi")

    def test_unknown_setting_is_named(self) -> None:
        result, _ = self.generate(self.SETTINGS, {"max_instances": 3})
        self.assertEqual(result.returncode, 2)
        self.assertIn("unknown setting 'max_instances'", result.stderr)


if __name__ == "__main__":
    absltest.main()
