"""The generator applies an environment file over the rule's attributes: top-level settings to
every service (project, region, repository, and names from the `service_name` template), a
`services` entry to its service only, a null removing a key of an object setting; it refuses
top-level settings of one service and checks every entry. //deploy's environment files suit the
services they key and any other. `--check_service_keys` (the push-all's validation action)
refuses `services` keys that name none of the services. Collisions between environments:
manifest_collisions_test.py. The services here are the kit's test services (kittest, echo), so
that deleting a sample leaves this test as it is."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import ClassVar

from absl.testing import absltest

from tests.deploy.manifest_testing import DIGEST, GeneratorTestCase


def deploy_environments() -> dict[str, dict]:
    """//deploy's environment files (the test's data holds them all), by file name."""
    files = [Path(path) for path in os.environ["ENVIRONMENTS"].split()]
    names = {path.name for path in files}
    assert {"local.json", "production.json", "staging.json"} <= names, names
    return {path.name: json.loads(path.read_text()) for path in files}


class EnvironmentsTest(GeneratorTestCase):
    # The kit's test services, kittest and echo, not the samples that //deploy declares.
    SETTINGS: ClassVar[dict] = {**GeneratorTestCase.SETTINGS, "service": "kittest"}

    def test_staging_names_every_service_by_its_template_and_caps_scale(self) -> None:
        staging = json.loads(Path(os.environ["STAGING"]).read_text())
        self.assertNotIn("service", staging)
        self.assertNotIn("services", staging)  # no line per service: the template names them all
        # A service the file has never heard of gets its staging name too.
        for service in ("kittest", "echo", "brand-new"):
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

    def test_every_deploy_environment_file_suits_its_services_and_any_other(self) -> None:
        # The services //deploy declares are the ones its files key (a key of no service fails
        # //deploy:push's build, cloud_run_push's check_environments); the kit's test services,
        # keyed nowhere, stand for any service the template alone names.
        for path, environment in deploy_environments().items():
            keyed = sorted(environment.get("services", {}))
            self.assertNotIn("kittest", keyed, path)
            self.assertNotIn("echo", keyed, path)
            for service in [*keyed, "kittest", "echo"]:
                with self.subTest(environment=path, service=service):
                    document = self.generate_valid(
                        {**self.SETTINGS, "service": service}, environment
                    )
                    template = environment.get("service_name", "{service}")
                    renamed = environment.get("services", {}).get(service, {}).get("service")
                    self.assertEqual(
                        document["metadata"]["name"],
                        renamed or template.replace("{service}", service),
                    )

    def test_project_region_and_repository_per_environment_for_every_service(self) -> None:
        environment = {
            "project": "kit-staging-project",
            "region": "us-central1",
            "repository": "staging-images",
            "service_name": "stg-{service}",
            "services": {"kittest": {"service": "kittest-canary"}},
        }
        expected = {"kittest": "kittest-canary", "echo": "stg-echo", "brand-new": "stg-brand-new"}
        for service, name in expected.items():
            document = self.generate_valid({**self.SETTINGS, "service": service}, environment)
            # A services entry's own name wins over the template.
            self.assertEqual(document["metadata"]["name"], name)
            self.assertEqual(
                document["metadata"]["labels"]["cloud.googleapis.com/location"], "us-central1"
            )
            self.assertEqual(
                document["spec"]["template"]["spec"]["containers"][0]["image"],
                f"us-central1-docker.pkg.dev/kit-staging-project/staging-images/{name}@{DIGEST}",
            )

    def test_service_name_must_be_a_template_of_the_service(self) -> None:
        for template in ("staging", "{name}-staging", "{service}-{region}"):
            with self.subTest(template=template):
                self.assertEqual(
                    self.refused(self.SETTINGS, {"service_name": template}),
                    [
                        f'service_name "{template}" in the environment file must hold '
                        '{service} (and no other braces), e.g. "{service}-staging": otherwise '
                        "every service would get one name"
                    ],
                )
        self.assertEqual(
            self.refused(self.SETTINGS, {"service_name": ["{service}"]}),
            ['service_name in the environment file is ["{service}"]: not a string'],
        )
        # The name it makes is checked as any service name.
        self.assertEqual(
            self.refused(self.SETTINGS, {"service_name": "{service}_staging"}),
            [
                "service 'kittest_staging': lowercase letters, digits and hyphens, at most 49, "
                "starting with a letter"
            ],
        )

    def test_services_entry_applies_to_its_service_only(self) -> None:
        environment = {
            "max_scale": 5,
            "memory": "1Gi",
            "services": {
                "kittest": {"max_scale": 7, "service": "kittest-canary"},
                "echo": {"max_scale": 9, "memory": "2Gi"},
            },
        }
        expected = {
            "kittest": ("kittest-canary", "7", "1Gi"),
            "echo": ("echo", "9", "2Gi"),
            "brand-new": ("brand-new", "5", "1Gi"),
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
            "services": {"kittest": {"env": {"C": "entry"}, "secret_env": {"TOKEN": "token:2"}}},
        }
        env = {
            service: self.generate_valid({**settings, "service": service}, environment)["spec"][
                "template"
            ]["spec"]["containers"][0]["env"]
            for service in ("kittest", "echo")
        }
        self.assertEqual(
            env["kittest"],
            [
                {"name": "A", "value": "rule"},
                {"name": "B", "value": "top"},
                {"name": "C", "value": "entry"},
                {"name": "TOKEN", "valueFrom": {"secretKeyRef": {"key": "2", "name": "token"}}},
            ],
        )
        self.assertEqual(
            env["echo"],
            [
                {"name": "A", "value": "rule"},
                {"name": "B", "value": "top"},
                {"name": "C", "value": "top"},
                {"name": "TOKEN", "valueFrom": {"secretKeyRef": {"key": "1", "name": "token"}}},
            ],
        )

    def test_top_level_service_is_refused(self) -> None:
        self.assertEqual(
            self.refused(self.SETTINGS, {"service": "kittest-staging", "max_scale": 3}),
            [
                'the environment file sets service "kittest-staging" at the top level, which would '
                "give every service that uses the file one name; name them all with "
                '"service_name": "{service}-staging", or rename one with '
                '"services": {"kittest": {"service": ...}}'
            ],
        )

    def test_top_level_image_repository_is_refused(self) -> None:
        environment = {"image_repository": "gcr.io/p/shared", "max_scale": 3}
        self.assertEqual(
            self.refused(self.SETTINGS, environment),
            [
                'the environment file sets image_repository "gcr.io/p/shared" at the top level, '
                "which would send every service that uses the file to one image repository; set "
                'it per service with "services": {"kittest": {"image_repository": ...}}'
            ],
        )
        per_service = {"services": {"kittest": {"image_repository": "gcr.io/p/kittest"}}}
        document = self.generate_valid(self.SETTINGS, per_service)
        self.assertEqual(document["spec"]["template"]["spec"]["containers"][0]["image"],
                         f"gcr.io/p/kittest@{DIGEST}")  # fmt: skip

    def test_null_removes_a_key_of_an_object_setting(self) -> None:
        # Moving API_KEY from the attribute's env to Secret Manager in one environment.
        settings = {**self.SETTINGS, "env": {"API_KEY": "dev-key", "GREETING": "hello"}}
        environment = {
            "env": {"API_KEY": None},
            "secret_env": {"API_KEY": "api-key:3"},
            "revision_annotations": {"run.googleapis.com/cloudsql-instances": "p:r:db"},
            "services": {
                "kittest": {
                    "env": {"GREETING": None, "API_KEY": None},
                    "revision_annotations": {"run.googleapis.com/cloudsql-instances": None},
                },
                "echo": {"env": {"GREETING": "hi"}},
            },
        }
        kittest = self.generate_valid(settings, environment)["spec"]["template"]
        self.assertEqual(
            kittest["spec"]["containers"][0]["env"],
            [{"name": "API_KEY", "valueFrom": {"secretKeyRef": {"key": "3", "name": "api-key"}}}],
        )
        self.assertNotIn(
            "run.googleapis.com/cloudsql-instances", kittest["metadata"]["annotations"]
        )
        echo = self.generate_valid({**settings, "service": "echo"}, environment)
        template = echo["spec"]["template"]
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
        # Without the top-level null echo keeps the attribute's API_KEY: refused.
        del environment["env"]
        self.assertEqual(
            self.refused({**settings, "service": "echo"}, environment),
            ["API_KEY is in both env and secret_env"],
        )

    def test_check_service_keys_names_unknown_keys_and_the_services(self) -> None:
        environments = {
            "staging.json": {"services": {"kittset": {"min_scale": 1}, "echo": {}}},
            "production.json": {"services": {"kittest": {}, "echo": {}, "brand-new": {}}},
            "dev.json": {"max_scale": 2},
        }
        returncode, lines, checked = self.check_service_keys(environments, ["kittest", "echo"])
        self.assertEqual(returncode, 2)
        self.assertFalse(checked)
        self.assertEqual(
            lines,
            [
                "cloud_run_manifest: bad environment staging.json: services key 'kittset' is not "
                "the Cloud Run service name of any service that uses this file, so its settings "
                "would apply to none; the services: echo, kittest",
                "cloud_run_manifest: bad environment production.json: services key 'brand-new' is "
                "not the Cloud Run service name of any service that uses this file, so its "
                "settings would apply to none; the services: echo, kittest",
            ],
        )
        del environments["staging.json"]["services"]["kittset"]
        del environments["production.json"]["services"]["brand-new"]
        self.assertEqual(self.check_service_keys(environments, ["kittest", "echo"]), (0, [], True))

    def test_check_service_keys_checks_each_file_as_a_build_would(self) -> None:
        environments = {
            "staging.json": {"service": "x", "services": {"kittest": {"max_instances": 1}}},
            "broken.json": "{",
        }
        returncode, lines, checked = self.check_service_keys(environments, ["kittest"])
        self.assertEqual((returncode, checked), (2, False))
        self.assertEqual(len(lines), 3, lines)
        self.assertIn("staging.json: the environment file sets service", lines[0])
        self.assertIn("staging.json: unknown setting 'max_instances'", lines[1])
        self.assertIn("broken.json: the environment file is not a JSON object", lines[2])

    def test_deploy_environment_files_pass_the_key_check_of_their_services(self) -> None:
        environments = deploy_environments()
        keyed = sorted({key for file in environments.values() for key in file.get("services", {})})
        self.assertEqual(self.check_service_keys(environments, keyed), (0, [], True))

    def test_services_entries_are_checked_like_top_level_settings(self) -> None:
        environment = {
            "services": {
                "kittest": {"max_instances": 3, "min_scale": "1"},
                "echo": {"session_affinity": "yes"},
                "Echo_Service": {},
                "brand-new": [],
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
            r"^unknown setting 'max_instances' in the environment file's services\.kittest; "
            r"known: allowed_invokers, auth_mode, container_concurrency, cpu, ",
        )
        self.assertNotIn("services", problems[1].split("known: ")[1].split(", "))
        self.assertEqual(
            problems[2:],
            [
                'min_scale in the environment file\'s services.kittest is "1": not an integer',
                'session_affinity in the environment file\'s services.echo is "yes": '
                "not true or false",
                "services key 'Echo_Service' in the environment file is not a Cloud Run "
                "service name",
                "services.brand-new in the environment file is []: not an object of settings",
            ],
        )
        self.assertEqual(
            self.refused(self.SETTINGS, {"services": ["kittest"]}),
            [
                'services in the environment file is ["kittest"]: not an object of service names '
                "to settings"
            ],
        )

    def test_cloud_run_rules_apply_to_the_services_entry(self) -> None:
        environment = {"services": {"echo": {"min_scale": 20, "cpu": "3"}}}
        self.assertEqual(
            self.refused({**self.SETTINGS, "service": "echo"}, environment),
            [
                "cpu '3': one of ['1', '2', '4', '6', '8'] or millicores below 1000m",
                "min_scale 20 above max_scale 10",
            ],
        )
        # Another service's entry is type-checked, but Cloud Run's rules are its own build's.
        document = self.generate_valid(self.SETTINGS, environment)
        annotations = document["spec"]["template"]["metadata"]["annotations"]
        self.assertEqual(annotations["autoscaling.knative.dev/minScale"], "0")


if __name__ == "__main__":
    absltest.main()
