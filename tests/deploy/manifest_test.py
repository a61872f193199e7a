"""//deploy:manifest as Cloud Run would read it: a schema of every field the kit writes, then the
rules that span fields (the h2c port is the one the probes ask, probes give up within 240 s, the
image is pinned to the digest of //deploy:image, secret volumes and mounts match, Direct VPC
egress is well formed). The generator refuses settings Cloud Run would refuse and settings of the
wrong type (one line each, exit 2, no traceback), and applies an environment file over the rule's
attributes: top-level settings to every service, a `services` entry to its service only, a null
removing a key of an object setting. `--check_service_keys` (the push-all's validation action)
refuses `services` keys that name none of the services."""

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
    if cpu.endswith("m") and scale["run.googleapis.com/cpu-throttling"] == "false":
        problems.append("cpu below 1 always allocated")
    names = [entry["name"] for entry in container.get("env", [])]
    if len(names) != len(set(names)):
        problems.append(f"env names repeat: {names}")
    mounts = {m["name"]: m["mountPath"] for m in container.get("volumeMounts", [])}
    volumes = {v["name"] for v in revision["spec"].get("volumes", [])}
    if set(mounts) != volumes:
        problems.append(f"volume mounts {sorted(mounts)} do not match volumes {sorted(volumes)}")
    if len(set(mounts.values())) != len(mounts):
        problems.append("two volumes mounted at one path")
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


class ManifestTest(absltest.TestCase):
    @classmethod
    def setUpClass(cls) -> None:
        cls.document = yaml.safe_load(Path(os.environ["MANIFEST"]).read_text())
        cls.digest = image_outputs("IMAGE")[1].read_text().strip()

    def test_kit_manifest_matches_the_schema(self) -> None:
        self.assertEqual(schema_problems(self.document), [])

    def test_kit_manifest_keeps_the_cross_field_rules(self) -> None:
        self.assertEqual(cross_field_problems(self.document, self.digest), [])
        annotations = self.document["spec"]["template"]["metadata"]["annotations"]
        self.assertEqual(annotations["run.googleapis.com/cpu-throttling"], "true")
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
            "do not match volumes": lambda c, d: c.update(
                volumeMounts=[{"name": "secret-1", "mountPath": "/secrets/a"}]
            ),
            "VPC egress without a network": lambda c, d: d["spec"]["template"]["metadata"][
                "annotations"
            ].update({"run.googleapis.com/vpc-access-egress": "all-traffic"}),
        }
        for problem, change in cases.items():
            found = cross_field_problems(broken(change), self.digest)
            self.assertTrue(any(problem in p for p in found), (problem, found))
        extra = broken(lambda c, d: c.update(command=["sh"]))
        self.assertIn("Additional properties", " ".join(schema_problems(extra)))
        wrong_kind = broken(lambda c, d: d.update(kind="Deployment"))
        self.assertNotEqual(schema_problems(wrong_kind), [])


DIGEST = "sha256:" + "a" * 64
PREFIX = "cloud_run_manifest: bad settings (environment "


def problems_of(result) -> list[str]:
    """The generator's problem lines, without the prefix that names the environment file."""
    lines = result.stderr.splitlines()
    assert all(line.startswith(PREFIX) for line in lines), result.stderr
    return [line.split("): ", 1)[1] for line in lines]


class GeneratorTest(absltest.TestCase):
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

    def check_service_keys(self, environments: dict[str, object], services: list[str]):
        """The generator's --check_service_keys of these files (name -> JSON) for `services`."""
        directory = Path(tempfile.mkdtemp(dir=os.environ.get("TEST_TMPDIR")))
        args = [os.environ["GENERATOR"], "--check_service_keys"]
        for name, environment in environments.items():
            (directory / name).write_text(json.dumps(environment))
            args.append(str(directory / name))
        for service in services:
            args += ["--service", service]
        args += ["--out", str(directory / "checked")]
        result = subprocess.run(args, capture_output=True, text=True, check=False)
        self.assertNotIn("Traceback", result.stderr)
        lines = [line.replace(f"{directory}/", "") for line in result.stderr.splitlines()]
        return result.returncode, lines, (directory / "checked").exists()

    def refused(self, settings: dict, environment: object = None) -> list[str]:
        result, document = self.generate(settings, environment)
        self.assertEqual(result.returncode, 2, result.stderr)
        self.assertIsNone(document)
        self.assertNotIn("Traceback", result.stderr)
        return problems_of(result)

    def test_staging_renames_each_service_and_caps_scale(self) -> None:
        staging = json.loads(Path(os.environ["STAGING"]).read_text())
        self.assertNotIn("service", staging)
        for service in ("ping", "route-guide"):
            settings = {**self.SETTINGS, "service": service}
            document = self.generate_valid(settings, {**staging, "env": {"MODE": "staging"}})
            self.assertEqual(document["metadata"]["name"], f"{service}-staging")
            annotations = document["spec"]["template"]["metadata"]["annotations"]
            self.assertEqual(annotations["autoscaling.knative.dev/maxScale"], "3")
            container = document["spec"]["template"]["spec"]["containers"][0]
            self.assertEqual(
                container["env"],
                [{"name": "GREETING", "value": "hello"}, {"name": "MODE", "value": "staging"}],
            )
            self.assertEqual(
                container["image"],
                f"europe-west1-docker.pkg.dev/kit-test-project/services/{service}-staging@{DIGEST}",
            )

    def test_every_environment_file_suits_both_services(self) -> None:
        # Every environment file in the test's runfiles (the directory of STAGING).
        # The test's data lists each of //deploy's environment files; fewer means one is unchecked.
        files = sorted(Path(os.environ["STAGING"]).parent.glob("*.json"))
        self.assertGreaterEqual(len(files), 2, files)
        self.assertLessEqual({"production.json", "staging.json"}, {f.name for f in files})
        for path in files:
            environment = json.loads(path.read_text())
            for service in ("ping", "route-guide"):
                with self.subTest(environment=path.name, service=service):
                    document = self.generate_valid(
                        {**self.SETTINGS, "service": service}, environment
                    )
                    renamed = environment.get("services", {}).get(service, {}).get("service")
                    self.assertEqual(document["metadata"]["name"], renamed or service)

    def test_services_entry_applies_to_its_service_only(self) -> None:
        environment = {
            "max_scale": 5,
            "memory": "1Gi",
            "services": {
                "ping": {"max_scale": 7, "service": "ping-canary"},
                "route-guide": {"max_scale": 9, "memory": "2Gi"},
            },
        }
        expected = {
            "ping": ("ping-canary", "7", "1Gi"),
            "route-guide": ("route-guide", "9", "2Gi"),
            "echo": ("echo", "5", "1Gi"),
        }
        for service, (name, max_scale, memory) in expected.items():
            document = self.generate_valid({**self.SETTINGS, "service": service}, environment)
            self.assertEqual(document["metadata"]["name"], name)
            annotations = document["spec"]["template"]["metadata"]["annotations"]
            self.assertEqual(annotations["autoscaling.knative.dev/maxScale"], max_scale)
            limits = document["spec"]["template"]["spec"]["containers"][0]["resources"]["limits"]
            self.assertEqual(limits["memory"], memory)

    def test_env_merges_attribute_then_top_level_then_services_entry(self) -> None:
        settings = {**self.SETTINGS, "env": {"A": "rule", "B": "rule", "C": "rule"}}
        environment = {
            "env": {"B": "top", "C": "top"},
            "secret_env": {"TOKEN": "token:1"},
            "services": {"ping": {"env": {"C": "entry"}, "secret_env": {"TOKEN": "token:2"}}},
        }
        env = {
            service: self.generate_valid({**settings, "service": service}, environment)["spec"][
                "template"
            ]["spec"]["containers"][0]["env"]
            for service in ("ping", "route-guide")
        }
        self.assertEqual(
            env["ping"],
            [
                {"name": "A", "value": "rule"},
                {"name": "B", "value": "top"},
                {"name": "C", "value": "entry"},
                {"name": "TOKEN", "valueFrom": {"secretKeyRef": {"key": "2", "name": "token"}}},
            ],
        )
        self.assertEqual(
            env["route-guide"],
            [
                {"name": "A", "value": "rule"},
                {"name": "B", "value": "top"},
                {"name": "C", "value": "top"},
                {"name": "TOKEN", "valueFrom": {"secretKeyRef": {"key": "1", "name": "token"}}},
            ],
        )

    def test_top_level_service_is_refused(self) -> None:
        self.assertEqual(
            self.refused(self.SETTINGS, {"service": "ping-staging", "max_scale": 3}),
            [
                'the environment file sets service "ping-staging" at the top level, which would '
                "rename every service that uses the file; rename one service with "
                '"services": {"ping": {"service": ...}}'
            ],
        )

    def test_top_level_image_repository_is_refused(self) -> None:
        environment = {"image_repository": "gcr.io/p/shared", "max_scale": 3}
        self.assertEqual(
            self.refused(self.SETTINGS, environment),
            [
                'the environment file sets image_repository "gcr.io/p/shared" at the top level, '
                "which would send every service that uses the file to one image repository; set "
                'it per service with "services": {"ping": {"image_repository": ...}}'
            ],
        )
        per_service = {"services": {"ping": {"image_repository": "gcr.io/p/ping"}}}
        document = self.generate_valid(self.SETTINGS, per_service)
        self.assertEqual(document["spec"]["template"]["spec"]["containers"][0]["image"],
                         f"gcr.io/p/ping@{DIGEST}")  # fmt: skip

    def test_null_removes_a_key_of_an_object_setting(self) -> None:
        # Moving API_KEY from the attribute's env to Secret Manager in one environment.
        settings = {**self.SETTINGS, "env": {"API_KEY": "dev-key", "GREETING": "hello"}}
        environment = {
            "env": {"API_KEY": None},
            "secret_env": {"API_KEY": "api-key:3"},
            "revision_annotations": {"run.googleapis.com/cloudsql-instances": "p:r:db"},
            "services": {
                "ping": {
                    "env": {"GREETING": None, "API_KEY": None},
                    "revision_annotations": {"run.googleapis.com/cloudsql-instances": None},
                },
                "route-guide": {"env": {"GREETING": "hi"}},
            },
        }
        ping = self.generate_valid(settings, environment)["spec"]["template"]
        self.assertEqual(
            ping["spec"]["containers"][0]["env"],
            [{"name": "API_KEY", "valueFrom": {"secretKeyRef": {"key": "3", "name": "api-key"}}}],
        )
        self.assertNotIn("run.googleapis.com/cloudsql-instances", ping["metadata"]["annotations"])
        route_guide = self.generate_valid({**settings, "service": "route-guide"}, environment)
        template = route_guide["spec"]["template"]
        self.assertEqual(
            template["spec"]["containers"][0]["env"],
            [
                {"name": "API_KEY", "valueFrom": {"secretKeyRef": {"key": "3", "name": "api-key"}}},
                {"name": "GREETING", "value": "hi"},
            ],
        )
        self.assertEqual(
            template["metadata"]["annotations"]["run.googleapis.com/cloudsql-instances"], "p:r:db"
        )
        # Without the top-level null route-guide keeps the attribute's API_KEY: refused.
        del environment["env"]
        self.assertEqual(
            self.refused({**settings, "service": "route-guide"}, environment),
            ["API_KEY is in both env and secret_env"],
        )

    def test_null_is_only_for_a_key_of_an_object_setting(self) -> None:
        self.assertEqual(
            self.refused(self.SETTINGS, {"max_scale": None, "custom_audiences": [None]}),
            [
                "max_scale in the environment file is null: not an integer",
                "custom_audiences in the environment file is [null]: not a list of strings",
            ],
        )
        attributes = {**self.SETTINGS, "env": {"GREETING": None}}
        result, document = self.generate(attributes)
        self.assertEqual(result.returncode, 2)
        self.assertIsNone(document)
        self.assertEqual(
            result.stderr.splitlines(),
            [
                'cloud_run_manifest: bad settings: env in the attributes is {"GREETING": null}: '
                "not an object of strings"
            ],
        )

    def test_every_attribute_is_passed_the_generator_has_no_defaults(self) -> None:
        settings = {k: v for k, v in self.SETTINGS.items() if k not in ("port", "memory")}
        result, document = self.generate(settings)
        self.assertEqual(result.returncode, 2)
        self.assertIsNone(document)
        self.assertEqual(
            result.stderr,
            "cloud_run_manifest: bad settings: the attributes lack memory, port (the rule "
            "passes every one)\n",
        )

    def test_check_service_keys_names_unknown_keys_and_the_services(self) -> None:
        environments = {
            "staging.json": {"services": {"pingg": {"min_scale": 1}, "route-guide": {}}},
            "production.json": {"services": {"ping": {}, "route-guide": {}, "echo": {}}},
            "dev.json": {"max_scale": 2},
        }
        returncode, lines, checked = self.check_service_keys(environments, ["ping", "route-guide"])
        self.assertEqual(returncode, 2)
        self.assertFalse(checked)
        self.assertEqual(
            lines,
            [
                "cloud_run_manifest: bad environment staging.json: services key 'pingg' is not "
                "the Cloud Run service name of any service that uses this file, so its settings "
                "would apply to none; the services: ping, route-guide",
                "cloud_run_manifest: bad environment production.json: services key 'echo' is "
                "not the Cloud Run service name of any service that uses this file, so its "
                "settings would apply to none; the services: ping, route-guide",
            ],
        )
        del environments["staging.json"]["services"]["pingg"]
        del environments["production.json"]["services"]["echo"]
        self.assertEqual(
            self.check_service_keys(environments, ["ping", "route-guide"]), (0, [], True)
        )

    def test_check_service_keys_checks_each_file_as_a_build_would(self) -> None:
        environments = {
            "staging.json": {"service": "x", "services": {"ping": {"max_instances": 1}}},
            "broken.json": "{",
        }
        returncode, lines, checked = self.check_service_keys(environments, ["ping"])
        self.assertEqual((returncode, checked), (2, False))
        self.assertEqual(len(lines), 3, lines)
        self.assertIn("staging.json: the environment file sets service", lines[0])
        self.assertIn("staging.json: unknown setting 'max_instances'", lines[1])
        self.assertIn("broken.json: the environment file is not a JSON object", lines[2])

    def test_deploy_environment_files_key_only_deploy_services(self) -> None:
        files = sorted(Path(os.environ["STAGING"]).parent.glob("*.json"))
        environments = {path.name: json.loads(path.read_text()) for path in files}
        self.assertEqual(
            self.check_service_keys(environments, ["ping", "route-guide"]), (0, [], True)
        )

    def test_services_entries_are_checked_like_top_level_settings(self) -> None:
        environment = {
            "services": {
                "ping": {"max_instances": 3, "min_scale": "1"},
                "route-guide": {"session_affinity": "yes"},
                "Route_Guide": {},
                "echo": [],
            },
            "servicez": {},
        }
        problems = self.refused(self.SETTINGS, environment)
        self.assertEqual(len(problems), 6, problems)
        self.assertRegex(
            problems[0], r"^unknown setting 'servicez' in the environment file; known: .*services"
        )
        self.assertRegex(
            problems[1],
            r"^unknown setting 'max_instances' in the environment file's services\.ping; "
            r"known: container_concurrency, cpu, ",
        )
        self.assertNotIn("services", problems[1].split("known: ")[1].split(", "))
        self.assertEqual(
            problems[2:],
            [
                'min_scale in the environment file\'s services.ping is "1": not an integer',
                'session_affinity in the environment file\'s services.route-guide is "yes": '
                "not true or false",
                "services key 'Route_Guide' in the environment file is not a Cloud Run "
                "service name",
                "services.echo in the environment file is []: not an object of settings",
            ],
        )
        self.assertEqual(
            self.refused(self.SETTINGS, {"services": ["ping"]}),
            [
                'services in the environment file is ["ping"]: not an object of service names '
                "to settings"
            ],
        )

    def test_cloud_run_rules_apply_to_the_services_entry(self) -> None:
        environment = {"services": {"route-guide": {"min_scale": 20, "cpu": "3"}}}
        self.assertEqual(
            self.refused({**self.SETTINGS, "service": "route-guide"}, environment),
            [
                "cpu '3': one of ['1', '2', '4', '6', '8'] or millicores below 1000m",
                "min_scale 20 above max_scale 10",
            ],
        )
        # Another service's entry is type-checked, but Cloud Run's rules are its own build's.
        document = self.generate_valid(self.SETTINGS, environment)
        annotations = document["spec"]["template"]["metadata"]["annotations"]
        self.assertEqual(annotations["autoscaling.knative.dev/minScale"], "0")

    def test_production_settings_render(self) -> None:
        settings = {
            **self.SETTINGS,
            "service_account": "ping-runtime@kit-test-project.iam.gserviceaccount.com",
            "secret_env": {"API_KEY": "api-key:3", "DB_URL": "db-url:latest"},
            "secret_files": {
                "/secrets/db/password": "db-password:latest",
                "/secrets/db/previous-password": "db-password:4",
                "/etc/app/tls/key.pem": "tls-key:2",
            },
            "vpc_network": "services-vpc",
            "vpc_subnetwork": "projects/kit-test-project/regions/europe-west1/subnetworks/run",
            "vpc_egress": "all-traffic",
            "cpu_always_allocated": True,
            "session_affinity": True,
            "service_annotations": {"run.googleapis.com/description": "Ping, with a relay"},
            "revision_annotations": {
                "run.googleapis.com/cloudsql-instances": "kit-test-project:europe-west1:db"
            },
        }
        document = self.generate_valid(settings)
        self.assertEqual(
            document["metadata"]["annotations"],
            {
                "run.googleapis.com/ingress": "all",
                "run.googleapis.com/description": "Ping, with a relay",
            },
        )
        template = document["spec"]["template"]
        self.assertEqual(
            template["metadata"]["annotations"],
            {
                "autoscaling.knative.dev/minScale": "0",
                "autoscaling.knative.dev/maxScale": "10",
                "run.googleapis.com/startup-cpu-boost": "true",
                "run.googleapis.com/execution-environment": "gen2",
                "run.googleapis.com/cpu-throttling": "false",
                "run.googleapis.com/sessionAffinity": "true",
                "run.googleapis.com/network-interfaces": (
                    '[{"network":"services-vpc","subnetwork":'
                    '"projects/kit-test-project/regions/europe-west1/subnetworks/run"}]'
                ),
                "run.googleapis.com/vpc-access-egress": "all-traffic",
                "run.googleapis.com/cloudsql-instances": "kit-test-project:europe-west1:db",
            },
        )
        spec = template["spec"]
        self.assertEqual(
            spec["serviceAccountName"], "ping-runtime@kit-test-project.iam.gserviceaccount.com"
        )
        (container,) = spec["containers"]
        self.assertEqual(
            container["env"],
            [
                {"name": "API_KEY", "valueFrom": {"secretKeyRef": {"key": "3", "name": "api-key"}}},
                {
                    "name": "DB_URL",
                    "valueFrom": {"secretKeyRef": {"key": "latest", "name": "db-url"}},
                },
                {"name": "GREETING", "value": "hello"},
            ],
        )
        self.assertEqual(
            container["volumeMounts"],
            [
                {"name": "secret-1", "mountPath": "/etc/app/tls"},
                {"name": "secret-2", "mountPath": "/secrets/db"},
            ],
        )
        self.assertEqual(
            spec["volumes"],
            [
                {
                    "name": "secret-1",
                    "secret": {"secretName": "tls-key", "items": [{"key": "2", "path": "key.pem"}]},
                },
                {
                    "name": "secret-2",
                    "secret": {
                        "secretName": "db-password",
                        "items": [
                            {"key": "latest", "path": "password"},
                            {"key": "4", "path": "previous-password"},
                        ],
                    },
                },
            ],
        )

    def test_defaults_write_cpu_throttling_and_nothing_else_new(self) -> None:
        document = self.generate_valid(self.SETTINGS)
        template = document["spec"]["template"]
        self.assertEqual(
            template["metadata"]["annotations"],
            {
                "autoscaling.knative.dev/minScale": "0",
                "autoscaling.knative.dev/maxScale": "10",
                "run.googleapis.com/startup-cpu-boost": "true",
                "run.googleapis.com/execution-environment": "gen2",
                "run.googleapis.com/cpu-throttling": "true",
            },
        )
        self.assertEqual(document["metadata"]["annotations"], {"run.googleapis.com/ingress": "all"})
        self.assertNotIn("volumes", template["spec"])
        self.assertNotIn("volumeMounts", template["spec"]["containers"][0])

    def test_vpc_subnet_alone_gets_cloud_runs_default_egress(self) -> None:
        document = self.generate_valid({**self.SETTINGS, "vpc_subnetwork": "run-subnet"})
        annotations = document["spec"]["template"]["metadata"]["annotations"]
        self.assertEqual(
            annotations["run.googleapis.com/network-interfaces"], '[{"subnetwork":"run-subnet"}]'
        )
        self.assertEqual(annotations["run.googleapis.com/vpc-access-egress"], "private-ranges-only")
        # With a Serverless VPC Access connector (not modelled) egress is allowed on its own.
        connector = {
            **self.SETTINGS,
            "vpc_egress": "all-traffic",
            "revision_annotations": {
                "run.googleapis.com/vpc-access-connector": "projects/p/locations/r/connectors/c"
            },
        }
        annotations = self.generate_valid(connector)["spec"]["template"]["metadata"]["annotations"]
        self.assertEqual(annotations["run.googleapis.com/vpc-access-egress"], "all-traffic")
        self.assertNotIn("run.googleapis.com/network-interfaces", annotations)

    def test_bad_production_settings_are_refused_one_line_each(self) -> None:
        environment = {
            "env": {"API_KEY": "plain"},
            "secret_env": {
                "API_KEY": "api-key:3",
                "PORT": "port:1",
                "TOKEN": "token",
                "OLD": "old:0",
            },
            "secret_files": {
                "/secrets/db/password": "db-password:latest",
                "/secrets/db/user": "db-user:1",
                "/proc/self/secret": "s:1",
                "/app/config/key": "s:1",
                "/password": "s:1",
                "/secrets/../etc/key": "s:1",
                "/secrets/tls/": "s:1",
                "/secrets/x/y": "projects/other/secrets/s:1",
            },
            "vpc_network": "Services_VPC",
            "vpc_egress": "all",
        }
        self.assertEqual(
            self.refused(self.SETTINGS, environment),
            [
                "API_KEY is in both env and secret_env",
                "secret_env OLD: 'old:0' is not SECRET:VERSION (a Secret Manager secret ID, and "
                "a version number or latest)",
                "secret_env PORT is set by Cloud Run itself",
                "secret_env TOKEN: 'token' is not SECRET:VERSION (a Secret Manager secret ID, "
                "and a version number or latest)",
                "secret_files /app/config/key: mounting at /app/config would hide the image's "
                "own files there; mount in a directory of its own, such as /secrets/NAME",
                "secret_files /password: mounting at / would hide the image's own files there; "
                "mount in a directory of its own, such as /secrets/NAME",
                "secret_files /proc/self/secret: Cloud Run does not mount secrets at /proc or "
                "below",
                "secret_files '/secrets/../etc/key': an absolute path, directory and file name, "
                "such as /secrets/db/password (no '..', '//', ':' or trailing '/')",
                "secret_files '/secrets/tls/': an absolute path, directory and file name, such "
                "as /secrets/db/password (no '..', '//', ':' or trailing '/')",
                "secret_files /secrets/x/y: 'projects/other/secrets/s:1' is not SECRET:VERSION "
                "(a Secret Manager secret ID, and a version number or latest)",
                "secret_files: /secrets/db would hold secrets db-password, db-user; Cloud Run "
                "mounts one secret per directory",
                "vpc_network 'Services_VPC' is not a VPC network name or "
                "projects/PROJECT/global/networks/NAME",
                "vpc_egress 'all': one of ['all-traffic', 'private-ranges-only']",
            ],
        )
        self.assertEqual(
            self.refused(self.SETTINGS, {"vpc_egress": "all-traffic"}),
            [
                "vpc_egress all-traffic needs vpc_network or vpc_subnetwork (or a "
                "run.googleapis.com/vpc-access-connector revision annotation)"
            ],
        )

    def test_cpu_below_one_follows_cloud_runs_cpu_limits(self) -> None:
        fractional = {
            "cpu": "250m",
            "container_concurrency": 1,
            "cpu_always_allocated": True,
            "memory": "768Mi",
        }
        self.assertEqual(
            self.refused(self.SETTINGS, fractional),
            [
                "cpu 250m below 1 cannot be always allocated (cpu_always_allocated)",
                "cpu 250m below 1 needs execution_environment gen1",
                "memory 768Mi above 512Mi needs at least 0.5 cpu",
            ],
        )
        self.assertEqual(
            self.refused(
                self.SETTINGS,
                {
                    "cpu": "50m",
                    "container_concurrency": 1,
                    "execution_environment": "gen1",
                    "memory": "256Mi",
                },
            ),
            ["cpu 50m: at least 80m"],
        )
        allowed = {
            "cpu": "500m",
            "container_concurrency": 1,
            "execution_environment": "gen1",
            "memory": "1Gi",
        }
        limits = self.generate_valid(self.SETTINGS, allowed)["spec"]["template"]["spec"][
            "containers"
        ][0]["resources"]["limits"]
        self.assertEqual(limits, {"cpu": "500m", "memory": "1Gi"})

    def test_extra_annotations_cannot_set_what_the_kit_writes(self) -> None:
        environment = {
            "service_annotations": {
                "run.googleapis.com/ingress": "internal",
                "run.googleapis.com/custom-audiences": "[]",
            },
            "revision_annotations": {
                "autoscaling.knative.dev/maxScale": "100",
                "run.googleapis.com/cpu-throttling": "false",
                "run.googleapis.com/network-interfaces": "[]",
                "run.googleapis.com/sessionAffinity": "true",
                "not a key": "x",
            },
        }
        self.assertEqual(
            self.refused(self.SETTINGS, environment),
            [
                "service_annotations run.googleapis.com/custom-audiences is written by the kit; "
                "set custom_audiences instead",
                "service_annotations run.googleapis.com/ingress is written by the kit; set "
                "ingress instead",
                "revision_annotations autoscaling.knative.dev/maxScale is written by the kit; "
                "set max_scale instead",
                "revision_annotations key 'not a key' is not an annotation key (PREFIX/NAME)",
                "revision_annotations run.googleapis.com/cpu-throttling is written by the kit; "
                "set cpu_always_allocated instead",
                "revision_annotations run.googleapis.com/network-interfaces is written by the "
                "kit; set vpc_network and vpc_subnetwork instead",
                "revision_annotations run.googleapis.com/sessionAffinity is written by the kit; "
                "set session_affinity instead",
            ],
        )

    def test_refuses_what_cloud_run_would_refuse_listing_every_problem(self) -> None:
        bad = {
            "startup_probe_period_seconds": 10,
            "max_scale": 0,
            "cpu": "500m",
            "memory": "8Gi",
            "env": {"PORT": "9090"},
        }
        problems = self.refused(self.SETTINGS, bad)
        for problem in [
            "startup probe gives up after 300 s; Cloud Run allows 240 s",
            "max_scale 0 must be at least 1",
            "cpu 500m below 1 needs container_concurrency 1",
            "memory 8Gi above 4Gi needs at least 2 cpu",
            "env PORT is set by Cloud Run itself",
        ]:
            self.assertIn(problem, problems)

    def test_wrong_types_are_refused_one_line_each(self) -> None:
        bad = {
            "min_scale": "1",
            "startup_cpu_boost": "false",
            "custom_audiences": 5,
            "max_scale": True,
            "env": {"WORKERS": 2},
            "secret_files": ["/secrets/a/b"],
            "cpu_always_allocated": "true",
        }
        self.assertEqual(
            self.refused(self.SETTINGS, bad),
            [
                'min_scale in the environment file is "1": not an integer',
                'startup_cpu_boost in the environment file is "false": not true or false',
                "custom_audiences in the environment file is 5: not a list of strings",
                "max_scale in the environment file is true: not an integer",
                'env in the environment file is {"WORKERS": 2}: not an object of strings (or '
                "null, to remove a key)",
                'secret_files in the environment file is ["/secrets/a/b"]: not an object of '
                "strings (or null, to remove a key)",
                'cpu_always_allocated in the environment file is "true": not true or false',
            ],
        )

    def test_gen2_needs_512mi(self) -> None:
        self.assertEqual(
            self.refused(self.SETTINGS, {"memory": "256Mi"}),
            ["memory 256Mi: execution environment gen2 needs at least 512Mi"],
        )
        gen1 = {"memory": "256Mi", "execution_environment": "gen1"}
        document = self.generate_valid(self.SETTINGS, gen1)
        limits = document["spec"]["template"]["spec"]["containers"][0]["resources"]["limits"]
        self.assertEqual(limits["memory"], "256Mi")

    def test_unknown_setting_is_named(self) -> None:
        (problem,) = self.refused(self.SETTINGS, {"max_instances": 3})
        self.assertTrue(
            problem.startswith("unknown setting 'max_instances' in the environment file; known: "),
            problem,
        )

    def test_environment_that_is_not_an_object_is_refused(self) -> None:
        self.assertEqual(
            self.refused(self.SETTINGS, ["max_scale", 3]),
            ["the environment file is not a JSON object"],
        )


if __name__ == "__main__":
    absltest.main()
