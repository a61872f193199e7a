"""Who may call, as a manifest setting: auth_mode, allowed_invokers and public reach the
container as the runtime's flags, and the generator refuses an identity that nobody verified
(cloud-run mode on a public service, where Cloud Run's invoker IAM check is off and a forged
token names any caller). That the container obeys those flags is image_run_test's."""

from __future__ import annotations

from absl.testing import absltest

from bazel.tools import manifest_rules
from python.runtime import invoker_auth
from tests.deploy.manifest_testing import GeneratorTestCase

INVOKER_IAM_DISABLED = "run.googleapis.com/invoker-iam-disabled"
URL = "https://ping-123456789.europe-west1.run.app"


def container_args(document: dict) -> list[str]:
    return document["spec"]["template"]["spec"]["containers"][0]["args"]


class AuthRenderTest(GeneratorTestCase):
    def test_the_generator_knows_the_runtimes_modes(self) -> None:
        self.assertEqual(manifest_rules.AUTH_MODES, invoker_auth.MODES)

    def test_default_is_none_written_out_and_the_check_stays_on(self) -> None:
        document = self.generate_valid(self.SETTINGS)
        self.assertEqual(container_args(document), ["--auth_mode=none"])
        self.assertNotIn(INVOKER_IAM_DISABLED, document["metadata"]["annotations"])

    def test_cloud_run_mode_with_invokers(self) -> None:
        settings = {
            **self.SETTINGS,
            "auth_mode": "cloud-run",
            "allowed_invokers": ["a@p.iam.gserviceaccount.com", "b@example.com"],
        }
        self.assertEqual(
            container_args(self.generate_valid(settings)),
            [
                "--auth_mode=cloud-run",
                "--allowed_invokers=a@p.iam.gserviceaccount.com,b@example.com",
            ],
        )

    def test_public_service_that_verifies_tokens_itself(self) -> None:
        settings = {
            **self.SETTINGS,
            "auth_mode": "verify",
            "public": True,
            "custom_audiences": [URL, "ping-clients"],
        }
        document = self.generate_valid(settings)
        self.assertEqual(
            container_args(document), ["--auth_mode=verify", f"--audiences={URL},ping-clients"]
        )
        self.assertEqual(document["metadata"]["annotations"][INVOKER_IAM_DISABLED], "true")

    def test_public_with_no_checks(self) -> None:
        document = self.generate_valid({**self.SETTINGS, "public": True})
        self.assertEqual(container_args(document), ["--auth_mode=none"])
        self.assertEqual(document["metadata"]["annotations"][INVOKER_IAM_DISABLED], "true")


class AuthRefusalsTest(GeneratorTestCase):
    def test_cloud_run_mode_on_a_public_service_is_refused(self) -> None:
        # The attribute says cloud-run; an environment makes the service public.
        settings = {**self.SETTINGS, "auth_mode": "cloud-run"}
        problems = self.refused(settings, {"services": {"ping": {"public": True}}})
        self.assertEqual(len(problems), 1, problems)
        self.assertIn("auth_mode cloud-run trusts the caller Cloud Run", problems[0])
        self.assertIn("use auth_mode verify", problems[0])

    def test_public_cannot_be_set_behind_the_kits_back(self) -> None:
        settings = {**self.SETTINGS, "auth_mode": "cloud-run"}
        environment = {"service_annotations": {INVOKER_IAM_DISABLED: "true"}}
        self.assertEqual(
            self.refused(settings, environment),
            [
                f"service_annotations {INVOKER_IAM_DISABLED} is written by the kit; "
                "set public instead"
            ],
        )

    def test_every_auth_problem_one_line_each(self) -> None:
        cases = {
            "auth_mode 'iam': one of none, cloud-run, verify": {"auth_mode": "iam"},
            "auth_mode verify checks each token's audience against custom_audiences": {
                "auth_mode": "verify"
            },
            "allowed_invokers needs auth_mode cloud-run or verify": {
                "allowed_invokers": ["a@example.com"]
            },
            "allowed_invokers 'a@example.com,b@example.com' is not an email address": {
                "auth_mode": "cloud-run",
                "allowed_invokers": ["a@example.com,b@example.com"],
            },
            "custom_audiences 'a,b': no commas or double quotes with auth_mode verify": {
                "auth_mode": "verify",
                "custom_audiences": ["a,b"],
            },
            # The runtime reads its list flags as CSV: `"https://x` stops it at startup, and
            # `"a@example.com,b@example.com"` is one entry.
            "custom_audiences '\"https://x': no commas or double quotes with auth_mode verify": {
                "auth_mode": "verify",
                "custom_audiences": ['"https://x'],
            },
            "allowed_invokers '\"a@example.com' is not an email address": {
                "auth_mode": "cloud-run",
                "allowed_invokers": ['"a@example.com'],
            },
        }
        for expected, environment in cases.items():
            with self.subTest(expected):
                problems = self.refused(self.SETTINGS, environment)
                self.assertEqual(len(problems), 1, problems)
                self.assertTrue(problems[0].startswith(expected), problems)

    def test_wrong_types(self) -> None:
        self.assertEqual(
            self.refused(self.SETTINGS, {"public": "yes", "allowed_invokers": "a@example.com"}),
            [
                'public in the environment file is "yes": not true or false',
                'allowed_invokers in the environment file is "a@example.com": not a list of '
                "strings",
            ],
        )


if __name__ == "__main__":
    absltest.main()
