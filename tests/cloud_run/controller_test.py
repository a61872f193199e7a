"""The local Cloud Run's controller on its own (no runc, no registry): the Admin API's rules
about revision names across services. Revision names are one namespace per project, as in
Cloud Run, so a service whose name is a prefix of another's (`ping`, `ping-staging`) may not
claim the other's revision: that made a create with no revision, whose answer then failed with
IndexError (HTTP 500) instead of Cloud Run's 409.

Each image names a registry on a port nothing listens on: a revision fails to pull at once
(ContainerMissing), which is all these checks need of it."""

from __future__ import annotations

from pathlib import Path

from absl.testing import absltest

from tools.cloud_run.controller import Controller
from tools.cloud_run.errors import ApiError

PROJECT = "my-project"
# Port 1 on loopback: refused at once, so each revision fails fast and no network is used.
IMAGE = "127.0.0.1:1/ping@sha256:" + "0" * 64


def service(name: str, revision: str | None = None, env: str = "one") -> dict:
    template: dict = {
        "spec": {"containers": [{"image": IMAGE, "env": [{"name": "WHICH", "value": env}]}]}
    }
    if revision:
        template["metadata"] = {"name": revision}
    return {
        "apiVersion": "serving.knative.dev/v1",
        "kind": "Service",
        "metadata": {"name": name},
        "spec": {"template": template},
    }


class ControllerTest(absltest.TestCase):
    def setUp(self) -> None:
        super().setUp()
        self.controller = Controller(
            Path(self.create_tempdir().full_path), front_end_port=1, stop_grace_seconds=1
        )
        self.addCleanup(self.controller.close)
        self.addCleanup(self.controller.wait_idle)
        self.controller.create(PROJECT, service("ping-staging", "ping-staging-00001-abc"), False)
        self.controller.wait_idle()

    def assertConflict(self, call: object, *args: object) -> None:
        with self.assertRaises(ApiError) as caught:
            call(*args)
        self.assertEqual(caught.exception.code, 409, caught.exception)
        self.assertIn("'ping-staging-00001-abc'", str(caught.exception))

    def test_a_create_may_not_take_another_services_revision(self) -> None:
        """`ping-staging-00001-abc` starts with `ping-`, yet belongs to ping-staging."""
        for dry_run in (True, False):
            with self.subTest(dry_run=dry_run):
                self.assertConflict(
                    self.controller.create,
                    PROJECT,
                    service("ping", "ping-staging-00001-abc"),
                    dry_run,
                )
        with self.assertRaises(ApiError) as caught:
            self.controller.get(PROJECT, "ping")
        self.assertEqual(caught.exception.code, 404)

    def test_a_replace_may_not_take_another_services_revision(self) -> None:
        self.controller.create(PROJECT, service("ping", "ping-00001-xyz", env="two"), False)
        self.assertConflict(
            self.controller.replace,
            PROJECT,
            "ping",
            service("ping", "ping-staging-00001-abc"),
            False,
        )
        self.controller.wait_idle()
        got = self.controller.get(PROJECT, "ping")
        self.assertEqual(got["status"]["latestCreatedRevisionName"], "ping-00001-xyz")
        listed = self.controller.list_revisions(PROJECT, "ping")["items"]
        self.assertEqual([r["metadata"]["name"] for r in listed], ["ping-00001-xyz"])

    def test_the_other_service_is_untouched(self) -> None:
        got = self.controller.get(PROJECT, "ping-staging")
        self.assertEqual(got["status"]["latestCreatedRevisionName"], "ping-staging-00001-abc")
        ready = got["status"]["conditions"][0]
        self.assertEqual((ready["type"], ready["status"]), ("Ready", "False"))
        self.assertIn("ping-staging-00001-abc", ready["message"])


if __name__ == "__main__":
    absltest.main()
