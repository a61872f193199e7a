"""The generator refuses settings Cloud Run would refuse and settings of the wrong type, one line
each, exit 2, no traceback, and no manifest: resources, probes, secrets, VPC egress, annotations
the kit writes itself, unknown settings, and attributes the rule failed to pass."""

from __future__ import annotations

from absl.testing import absltest

from tests.deploy.manifest_testing import GeneratorTestCase


class RefusalsTest(GeneratorTestCase):
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
