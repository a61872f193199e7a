"""`--check_collisions` (run by the manifests' and the push-all's validation actions) refuses
two deployments of one Cloud Run service (project, region, name): two environments giving one
service the same name, or two services of two environments landing on one name. //deploy's own
environment files do not collide, even with a service added."""

from __future__ import annotations

import json
import os
from pathlib import Path

from absl.testing import absltest

from tests.deploy.manifest_testing import GeneratorTestCase


class CollisionsTest(GeneratorTestCase):
    def check_collisions(self, environments: dict[str, object], services: list[str]):
        """The generator's --check_collisions of these files, each service with this test's
        settings under its own name."""

        def settings_of_each_service(directory: Path) -> list[str]:
            args = []
            for service in services:
                path = directory / f"{service}.settings.json"
                path.write_text(json.dumps({**self.SETTINGS, "service": service}))
                args += ["--service_settings", str(path)]
            return args

        return self.generator_check("--check_collisions", environments, settings_of_each_service)

    def test_two_environments_deploying_one_service_to_one_cloud_run_service_fail(self) -> None:
        # Staging as it was before its template: a new service without its own line.
        environments = {
            "production.json": {"min_scale": 1},
            "staging.json": {"max_scale": 3, "services": {"ping": {"service": "ping-staging"}}},
        }
        self.assertEqual(
            self.check_collisions(environments, ["ping", "route-guide"]),
            (
                2,
                [
                    "cloud_run_manifest: environments production and staging would both deploy "
                    "route-guide to Cloud Run service route-guide (project kit-test-project, "
                    "region europe-west1), so one would replace the other; give each "
                    'environment its own project, region or name ("service_name": '
                    '"{service}-staging")'
                ],
                False,
            ),
        )
        # Its own project, region or name each make them two services.
        for separate in (
            {"project": "kit-staging-project"},
            {"region": "us-central1"},
            {"service_name": "{service}-staging"},
        ):
            with self.subTest(separate=separate):
                environments["staging.json"] = separate
                self.assertEqual(
                    self.check_collisions(environments, ["ping", "route-guide"]), (0, [], True)
                )

    def test_two_services_of_two_environments_on_one_cloud_run_service_fail(self) -> None:
        environments = {
            "production.json": {},
            "staging.json": {
                "service_name": "{service}-staging",
                "services": {"ping": {"service": "route-guide"}},
            },
        }
        returncode, lines, checked = self.check_collisions(environments, ["ping", "route-guide"])
        self.assertEqual((returncode, checked), (2, False))
        self.assertEqual(
            lines,
            [
                "cloud_run_manifest: route-guide in production and ping in staging would all "
                "deploy to Cloud Run service route-guide (project kit-test-project, region "
                "europe-west1), so one would replace the other"
            ],
        )

    def test_deploy_environment_files_do_not_collide(self) -> None:
        files = sorted(Path(os.environ["STAGING"]).parent.glob("*.json"))
        environments = {path.name: json.loads(path.read_text()) for path in files}
        self.assertEqual(
            self.check_collisions(environments, ["ping", "route-guide", "brand-new"]),
            (0, [], True),
        )


if __name__ == "__main__":
    absltest.main()
