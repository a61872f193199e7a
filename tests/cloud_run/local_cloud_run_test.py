"""The local Cloud Run end to end (//tools/cloud_run:local), as a release uses it: the kit's test
service (tests/services/kittest) pushed by the kit's push to a real registry, created and
replaced through the Admin API, each revision run under runc and called through the h2c front
end. Also what it refuses: no token (401), a missing service (404), an image or a manifest
asking for root, a revision whose container exits or whose probe watches the wrong port (Ready
False with Cloud Run's reason), and dryRun (nothing changes).
Its replaceService and GET answers have the structure of Google's documented v1 Service
(fixtures/)."""

from __future__ import annotations

import json
import re
import socket
import time
from pathlib import Path

import grpc
from absl.testing import absltest

from bazel.tools.oci_runtime import why_runc_cannot_run
from tests.cloud_run.local_cloud_run import (
    API,
    PROJECT,
    LocalCloudRun,
    host_of,
    manifest,
    push_as_root,
    push_kittest,
    ready_condition,
    scratch,
)
from tests.deploy.registry_server import RegistryServer

FIXTURE = Path(__file__).parent / "fixtures" / "google_v1_service.json"


def structure(value: object) -> object:
    """Keys and types, not values: dicts by key, lists by their first element."""
    if isinstance(value, dict):
        return {key: structure(item) for key, item in value.items()}
    if isinstance(value, list):
        return [structure(value[0])] if value else []
    return type(value).__name__


def missing(expected: object, actual: object, where: str = "") -> list[str]:
    """Where `actual` lacks a key of `expected` or has another type there."""
    if isinstance(expected, dict):
        if not isinstance(actual, dict):
            return [f"{where}: not an object"]
        return [
            problem
            for key, item in expected.items()
            for problem in (
                missing(item, actual[key], f"{where}.{key}")
                if key in actual
                else [f"{where}.{key}: missing"]
            )
        ]
    if isinstance(expected, list):
        if not isinstance(actual, list) or not actual:
            return [f"{where}: not a non-empty list"]
        # Every element of the answer against the documented element: none may lack a key
        # the documentation's has, but optional keys (tag, url) are checked where present.
        return [p for element in actual[:1] for p in missing(expected[0], element, f"{where}[]")]
    return [] if expected == structure(actual) else [f"{where}: {structure(actual)}"]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class LocalCloudRunTest(absltest.TestCase):
    @classmethod
    def setUpClass(cls) -> None:
        if reason := why_runc_cannot_run():
            raise AssertionError(f"cannot run the local Cloud Run: {reason}")
        cls.registry = RegistryServer(scratch() / "registry").start()
        cls.addClassCleanup(cls.registry.stop)
        cls.kittest = push_kittest(cls.registry)
        cls.local = LocalCloudRun()
        cls.addClassCleanup(cls.local.stop)

    def create(self, name: str, **container: object) -> dict:
        code, body = self.local.call(
            "POST", self.local.service_path(), manifest(self.kittest, name, **container)
        )
        self.assertEqual(code, 200, body)
        return self.local.wait_reconciled(name)

    def front_end_lines(self, host: str) -> list[str]:
        """The revisions the front end sent connections for `host` to, in order."""
        pattern = re.compile(rf"^front end: {re.escape(host)} -> (\S+)$", re.MULTILINE)
        return pattern.findall(self.local.log())

    def test_service_serves_through_the_front_end(self) -> None:
        service = self.create("first")
        self.assertEqual(ready_condition(service)["status"], "True", service)
        revision = service["status"]["latestReadyRevisionName"]
        self.assertRegex(revision, r"^first-00001-[a-z]{3}$")
        self.assertEqual(
            service["status"]["traffic"],
            [{"revisionName": revision, "percent": 100, "latestRevision": True}],
        )
        url = service["status"]["url"]
        self.assertEqual(url, f"http://first.{PROJECT}.localhost:{self.local.front_end_port}")
        self.assertEqual(self.local.unary(host_of(url), "through"), "through")
        self.assertEqual(self.front_end_lines(host_of(url).split(":")[0]), [revision])
        # Private, as a service is on Cloud Run unless its manifest says public: no ID token
        # is HTTP 403, which a gRPC client reports as PERMISSION_DENIED.
        with self.assertRaises(grpc.RpcError) as raised:
            self.local.unary(host_of(url), token=False)
        self.assertEqual(raised.exception.code(), grpc.StatusCode.PERMISSION_DENIED)
        self.assertIn(f"front end: first.{PROJECT}.localhost: 403 (no ID token)", self.local.log())
        self.assertEqual(self.local.unary(host_of(url), "again"), "again")
        code, body = self.local.call("GET", f"{API}/namespaces/{PROJECT}/revisions/{revision}")
        self.assertEqual(code, 200, body)
        self.assertEqual(ready_condition(body)["status"], "True")
        self.assertEqual(
            body["status"]["imageDigest"],
            self.kittest["spec"]["template"]["spec"]["containers"][0]["image"],
        )

    def test_replace_and_get_have_the_structure_of_googles_v1_service(self) -> None:
        old = self.create("shape")["status"]["latestReadyRevisionName"]
        document = manifest(self.kittest, "shape", env=[{"name": "SHAPE", "value": "2"}])
        document["spec"]["template"]["metadata"]["name"] = "shape-candidate"
        document["spec"]["traffic"] = [
            {"revisionName": old, "percent": 100},
            {"revisionName": "shape-candidate", "tag": "candidate", "percent": 0},
        ]
        code, body = self.local.call("PUT", self.local.service_path("shape"), document)
        self.assertEqual(code, 200, body)
        google = json.loads(FIXTURE.read_text())
        # replaceService's own answer (before the change is reconciled), then a get's after.
        self.assertEqual(missing(structure(google), body), [])
        answer = self.local.wait_reconciled("shape")
        self.assertEqual(missing(structure(google), answer), [])
        self.assertEqual(
            missing(structure(google["status"]["traffic"][1]), answer["status"]["traffic"][1]), []
        )

    def test_new_env_makes_a_revision_that_only_its_tag_reaches(self) -> None:
        old = self.create("tagged")["status"]["latestReadyRevisionName"]
        document = manifest(self.kittest, "tagged", env=[{"name": "RELEASE", "value": "2"}])
        document["spec"]["template"]["metadata"]["name"] = "tagged-v2"
        document["spec"]["traffic"] = [
            {"revisionName": old, "percent": 100},
            {"revisionName": "tagged-v2", "tag": "candidate", "percent": 0},
        ]
        code, body = self.local.call("PUT", self.local.service_path("tagged"), document)
        self.assertEqual(code, 200, body)
        service = self.local.wait_reconciled("tagged")
        self.assertEqual(ready_condition(service)["status"], "True", service)
        self.assertEqual(service["status"]["latestCreatedRevisionName"], "tagged-v2")
        tag_url = f"http://candidate---tagged.{PROJECT}.localhost:{self.local.front_end_port}"
        self.assertEqual(
            service["status"]["traffic"],
            [
                {"revisionName": old, "percent": 100},
                {"revisionName": "tagged-v2", "tag": "candidate", "url": tag_url},
            ],
        )
        for _ in range(5):
            self.assertEqual(self.local.unary(host_of(tag_url)), "hello")
            self.assertEqual(self.local.unary(host_of(service["status"]["url"])), "hello")
        self.assertEqual(self.front_end_lines(host_of(tag_url).split(":")[0]), ["tagged-v2"] * 5)
        self.assertEqual(
            self.front_end_lines(host_of(service["status"]["url"]).split(":")[0]), [old] * 5
        )

    def test_a_revision_without_traffic_stops_and_starts_again_when_named(self) -> None:
        old = self.create("retire")["status"]["latestReadyRevisionName"]
        document = manifest(self.kittest, "retire", env=[{"name": "RELEASE", "value": "2"}])
        code, body = self.local.call("PUT", self.local.service_path("retire"), document)
        self.assertEqual(code, 200, body)
        service = self.local.wait_reconciled("retire")
        new = service["status"]["latestReadyRevisionName"]
        self.assertNotEqual(new, old)
        self.assertEqual([t["revisionName"] for t in service["status"]["traffic"]], [new])
        # SIGTERM: the server drains and logs that it stopped, well within the grace period.
        deadline = time.monotonic() + 30
        stopped = re.compile(rf"^\[{re.escape(old)}\] .*\bstopped\b", re.MULTILINE)
        while not stopped.search(self.local.log()) and time.monotonic() < deadline:
            time.sleep(0.1)
        self.assertRegex(self.local.log(), rf"{re.escape(old)}: no traffic or tag refers to it")
        self.assertRegex(self.local.log(), stopped)
        code, revision = self.local.call("GET", f"{API}/namespaces/{PROJECT}/revisions/{old}")
        self.assertEqual(ready_condition(revision)["status"], "True")  # as on Cloud Run
        # A rollback: the same template, traffic back on the old revision, which starts again.
        document["spec"]["traffic"] = [{"revisionName": old, "percent": 100}]
        code, body = self.local.call("PUT", self.local.service_path("retire"), document)
        self.assertEqual(code, 200, body)
        service = self.local.wait_reconciled("retire")
        self.assertEqual(ready_condition(service)["status"], "True", service)
        self.assertEqual(service["status"]["latestCreatedRevisionName"], new)
        self.assertEqual(service["status"]["traffic"], [{"revisionName": old, "percent": 100}])
        host = host_of(service["status"]["url"])
        self.assertEqual(self.local.unary(host), "hello")
        self.assertEqual(self.front_end_lines(host.split(":")[0])[-1], old)

    def test_unchanged_replace_makes_no_revision(self) -> None:
        service = self.create("same")
        revision = service["status"]["latestCreatedRevisionName"]
        code, body = self.local.call(
            "PUT", self.local.service_path("same"), manifest(self.kittest, "same")
        )
        self.assertEqual(code, 200, body)
        self.assertEqual(body["metadata"]["generation"], service["metadata"]["generation"])
        again = self.local.wait_reconciled("same")
        self.assertEqual(again["status"]["latestCreatedRevisionName"], revision)
        code, revisions = self.local.call(
            "GET",
            f"{API}/namespaces/{PROJECT}/revisions?labelSelector=serving.knative.dev/service=same",
        )
        self.assertEqual(code, 200, revisions)
        self.assertEqual([r["metadata"]["name"] for r in revisions["items"]], [revision])

    def test_a_container_that_exits_is_not_ready_and_takes_no_traffic(self) -> None:
        old = self.create("exits")["status"]["latestReadyRevisionName"]
        # absl exits on an unknown flag, before the server listens.
        document = manifest(self.kittest, "exits", args=["--no_such_flag"])
        code, body = self.local.call("PUT", self.local.service_path("exits"), document)
        self.assertEqual(code, 200, body)
        service = self.local.wait_reconciled("exits")
        ready = ready_condition(service)
        self.assertEqual(ready["status"], "False", service)
        self.assertEqual(ready["reason"], "RevisionFailed")
        new = service["status"]["latestCreatedRevisionName"]
        self.assertNotEqual(new, old)
        self.assertEqual(service["status"]["latestReadyRevisionName"], old)
        self.assertEqual(service["status"]["traffic"][0]["revisionName"], old)
        code, revision = self.local.call("GET", f"{API}/namespaces/{PROJECT}/revisions/{new}")
        self.assertEqual(code, 200, revision)
        condition = ready_condition(revision)
        self.assertEqual(
            (condition["status"], condition["reason"]), ("False", "HealthCheckContainerError")
        )
        self.assertRegex(condition["message"], r"Container called exit\([1-9][0-9]*\)\.$")
        self.assertIn(condition["message"], ready["message"])
        self.assertEqual(self.local.unary(host_of(service["status"]["url"])), "hello")

    def test_a_probe_on_the_wrong_port_fails(self) -> None:
        probe = {"grpc": {"port": free_port()}, "periodSeconds": 1, "failureThreshold": 2}
        service = self.create("wrong-port", startupProbe=probe)
        ready = ready_condition(service)
        self.assertEqual((ready["status"], ready["reason"]), ("False", "RevisionFailed"), service)
        self.assertIn("failed the configured startup probe checks", ready["message"])
        self.assertNotIn("latestReadyRevisionName", service["status"])
        routes = next(c for c in service["status"]["conditions"] if c["type"] == "RoutesReady")
        self.assertEqual(routes["status"], "False")

    def test_root_is_refused_from_the_image_and_from_the_manifest(self) -> None:
        image = self.kittest["spec"]["template"]["spec"]["containers"][0]["image"]
        service = self.create("root-image", image=push_as_root(self.registry, image))
        ready = ready_condition(service)
        self.assertEqual((ready["status"], ready["reason"]), ("False", "RevisionFailed"), service)
        self.assertIn("runs as root (uid 0, gid 0)", ready["message"])
        document = manifest(self.kittest, "root-manifest", securityContext={"runAsUser": 0})
        code, body = self.local.call("POST", self.local.service_path(), document)
        self.assertEqual(code, 400, body)
        self.assertIn("runAsUser 0 asks for root", body["error"]["message"])
        self.assertEqual(self.local.call("GET", self.local.service_path("root-manifest"))[0], 404)

    def test_dry_run_changes_nothing(self) -> None:
        service = self.create("dry")
        changed = manifest(self.kittest, "dry", env=[{"name": "DRY", "value": "1"}])
        code, body = self.local.call("PUT", self.local.service_path("dry") + "?dryRun=all", changed)
        self.assertEqual(code, 200, body)
        code, after = self.local.call("GET", self.local.service_path("dry"))
        self.assertEqual(code, 200, after)
        self.assertEqual(after["metadata"], service["metadata"])
        self.assertEqual(after["spec"], service["spec"])
        code, body = self.local.call(
            "POST", self.local.service_path() + "?dryRun=all", manifest(self.kittest, "never")
        )
        self.assertEqual(code, 200, body)
        self.assertEqual(self.local.call("GET", self.local.service_path("never"))[0], 404)
        # Validation runs in a dry run too.
        broken = manifest(self.kittest, "dry", env=[{"name": "PORT", "value": "1"}])
        code, body = self.local.call("PUT", self.local.service_path("dry") + "?dryRun=all", broken)
        self.assertEqual(code, 400, body)
        self.assertEqual(body["error"]["status"], "INVALID_ARGUMENT")

    def test_malformed_documents_and_unknown_hosts_are_refused(self) -> None:
        for document in ([], {"metadata": []}, manifest(self.kittest, "Bad_Name")):
            code, body = self.local.call("POST", self.local.service_path(), document)
            self.assertEqual(code, 400, body)
            self.assertEqual(body["error"]["status"], "INVALID_ARGUMENT")
        # HTTP 404 from the front end, which a gRPC client reports as UNIMPLEMENTED.
        with self.assertRaises(grpc.RpcError) as raised:
            self.local.unary(f"nobody.{PROJECT}.localhost:{self.local.front_end_port}")
        self.assertEqual(raised.exception.code(), grpc.StatusCode.UNIMPLEMENTED)
        self.assertIn(f"front end: nobody.{PROJECT}.localhost: 404", self.local.log())
        self.assertEqual(self.local.call("GET", self.local.service_path())[0], 200)

    def test_no_token_is_401_and_a_missing_service_404(self) -> None:
        for token in (None, ""):
            code, body = self.local.call("GET", self.local.service_path("first"), token=token)
            self.assertEqual(code, 401)
            self.assertEqual(set(body["error"]), {"code", "message", "status"})
            self.assertEqual(
                (body["error"]["code"], body["error"]["status"]), (401, "UNAUTHENTICATED")
            )
        code, body = self.local.call("GET", self.local.service_path("no-such-service"))
        self.assertEqual(code, 404)
        self.assertEqual(body["error"]["status"], "NOT_FOUND")
        self.assertEqual(
            self.local.call(
                "PUT",
                self.local.service_path("no-such-service"),
                manifest(self.kittest, "no-such-service"),
            )[0],
            404,
        )
        # Still answering.
        self.assertEqual(self.local.call("GET", self.local.service_path())[0], 200)


if __name__ == "__main__":
    absltest.main()
