"""The OpenTelemetry collector sidecar: set per environment, it adds the `collector` container
(no port, its config from Secret Manager, a startup probe on its health_check port), makes the
service's container `app` start after it, and points the runtime at it; without it the manifest
is the one-container one. Pinned images only; the rest of the settings checked as any."""

from __future__ import annotations

from absl.testing import absltest

from tests.deploy.manifest_testing import DIGEST, GeneratorTestCase

COLLECTOR = (
    "us-docker.pkg.dev/cloud-ops-agents-artifacts/google-cloud-opentelemetry-collector/"
    "otelcol-google:0.137.0"
)
WITH_COLLECTOR = {"otel_collector_image": COLLECTOR, "otel_collector_config": "otel-config:3"}


class CollectorSidecarTest(GeneratorTestCase):
    def test_the_sidecar_its_dependency_and_probe(self) -> None:
        document = self.generate_valid(self.SETTINGS, WITH_COLLECTOR)
        template = document["spec"]["template"]
        self.assertEqual(
            template["metadata"]["annotations"]["run.googleapis.com/container-dependencies"],
            '{"app":["collector"]}',
        )
        app, collector = template["spec"]["containers"]
        self.assertEqual(app["name"], "app")
        self.assertEqual(
            app["image"], f"europe-west1-docker.pkg.dev/kit-test-project/services/ping@{DIGEST}"
        )
        self.assertEqual(app["ports"], [{"name": "h2c", "containerPort": 8080}])
        self.assertEqual(
            app["env"],
            [
                {"name": "GREETING", "value": "hello"},
                {"name": "OTEL_EXPORTER_OTLP_ENDPOINT", "value": "http://localhost:4317"},
            ],
        )
        self.assertEqual(
            collector,
            {
                "name": "collector",
                "image": COLLECTOR,
                "args": ["--config=/etc/otelcol-google/config.yaml"],
                # The service's own startup budget: period 2 s, 30 tries, 1 s each.
                "startupProbe": {
                    "httpGet": {"path": "/", "port": 13133},
                    "periodSeconds": 2,
                    "failureThreshold": 30,
                    "timeoutSeconds": 1,
                },
                "volumeMounts": [
                    {"name": "otel-collector-config", "mountPath": "/etc/otelcol-google"}
                ],
            },
        )
        self.assertEqual(
            template["spec"]["volumes"],
            [
                {
                    "name": "otel-collector-config",
                    "secret": {
                        "secretName": "otel-config",
                        "items": [{"key": "3", "path": "config.yaml"}],
                    },
                }
            ],
        )

    def test_secret_files_and_the_collector_config_are_separate_volumes(self) -> None:
        settings = {**self.SETTINGS, "secret_files": {"/secrets/db/password": "db:2"}}
        template = self.generate_valid(settings, WITH_COLLECTOR)["spec"]["template"]["spec"]
        self.assertEqual(
            [volume["name"] for volume in template["volumes"]],
            ["secret-1", "otel-collector-config"],
        )
        app, collector = template["containers"]
        self.assertEqual(app["volumeMounts"], [{"name": "secret-1", "mountPath": "/secrets/db"}])
        self.assertEqual(collector["volumeMounts"][0]["name"], "otel-collector-config")

    def test_per_environment_and_per_service(self) -> None:
        environment = {**WITH_COLLECTOR, "services": {"route-guide": {"otel_collector_image": ""}}}
        ping = self.generate_valid(self.SETTINGS, environment)
        self.assertEqual(len(ping["spec"]["template"]["spec"]["containers"]), 2)
        # route-guide opts out in this environment (and so must drop the config too).
        environment["services"]["route-guide"]["otel_collector_config"] = ""
        route_guide = self.generate_valid({**self.SETTINGS, "service": "route-guide"}, environment)
        self.assertEqual(len(route_guide["spec"]["template"]["spec"]["containers"]), 1)

    def test_without_it_the_manifest_has_one_unnamed_container(self) -> None:
        template = self.generate_valid(self.SETTINGS)["spec"]["template"]
        (container,) = template["spec"]["containers"]
        self.assertNotIn("name", container)
        self.assertNotIn("volumes", template["spec"])
        self.assertNotIn(
            "run.googleapis.com/container-dependencies", template["metadata"]["annotations"]
        )
        self.assertEqual(container["env"], [{"name": "GREETING", "value": "hello"}])

    def test_a_digest_pins_the_image(self) -> None:
        image = COLLECTOR.rsplit(":", 1)[0] + "@sha256:" + "b" * 64
        document = self.generate_valid(
            self.SETTINGS, {**WITH_COLLECTOR, "otel_collector_image": image}
        )
        self.assertEqual(document["spec"]["template"]["spec"]["containers"][1]["image"], image)

    def test_an_image_that_can_move_is_refused(self) -> None:
        repository = COLLECTOR.rsplit(":", 1)[0]
        for image in (repository, f"{repository}:latest", "otelcol-google:0.137.0"):
            with self.subTest(image=image):
                self.assertEqual(
                    self.refused(self.SETTINGS, {**WITH_COLLECTOR, "otel_collector_image": image}),
                    [
                        f"otel_collector_image {image!r} must be pinned: REPOSITORY@sha256:DIGEST "
                        "or REPOSITORY:TAG with a tag other than latest, e.g. us-docker.pkg.dev/"
                        "cloud-ops-agents-artifacts/google-cloud-opentelemetry-collector/"
                        "otelcol-google:0.137.0"
                    ],
                )

    def test_config_and_endpoint_refusals(self) -> None:
        self.assertEqual(
            self.refused(self.SETTINGS, {"otel_collector_image": COLLECTOR}),
            [
                "otel_collector_config '' is not SECRET:VERSION: the collector's config (a "
                "Secret Manager secret ID and a version number or latest), mounted as "
                "/etc/otelcol-google/config.yaml"
            ],
        )
        self.assertEqual(
            self.refused(self.SETTINGS, {"otel_collector_config": "otel-config:3"}),
            ["otel_collector_config without otel_collector_image: no collector to read it"],
        )
        environment = {
            **WITH_COLLECTOR,
            "env": {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://elsewhere:4317"},
            "revision_annotations": {"run.googleapis.com/container-dependencies": "{}"},
        }
        self.assertEqual(
            self.refused(self.SETTINGS, environment),
            [
                "revision_annotations run.googleapis.com/container-dependencies is written by "
                "the kit; set otel_collector_image instead",
                "env OTEL_EXPORTER_OTLP_ENDPOINT is set by otel_collector_image (the sidecar, "
                "http://localhost:4317); remove it",
            ],
        )


if __name__ == "__main__":
    absltest.main()
