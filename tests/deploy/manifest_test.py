"""//deploy:manifest as Cloud Run would read it: a schema of every field the kit writes, then the
rules that span fields (the h2c port is the one the probes ask, probes give up within 240 s, the
image is pinned to the digest of //deploy:image, secret volumes and mounts match, Direct VPC
egress is well formed); and what the generator renders from settings past the defaults (secrets,
VPC, annotations). Its refusals are manifest_refusals_test, environment files
manifest_environments_test."""

from __future__ import annotations

import copy
import os
from pathlib import Path

import yaml
from absl.testing import absltest

from bazel.tools.oci_layout import image_outputs
from tests.deploy.manifest_testing import (
    GeneratorTestCase,
    cross_field_problems,
    schema_problems,
)


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


class RenderTest(GeneratorTestCase):
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


if __name__ == "__main__":
    absltest.main()
