"""A stand-in for Cloud Run Admin API v1 on a loopback HTTP socket, for the release tool's
tests: namespaces.services get / create / replaceService (with `dryRun=all`) and
namespaces.revisions get and list (by service), answered in the shapes of Google's reference
(service_v1.json, a Service as the v1 API returns it, with the fields of
https://cloud.google.com/run/docs/reference/rest/v1/namespaces.services, is the model;
fake_api_test checks the answers against it).

What it keeps of Cloud Run's behaviour, because the release depends on it:
- a replace whose template is unchanged makes no revision (the known trap), and a template
  named after a revision that exists with another template is refused (409);
- `metadata.resourceVersion` must match on replace (optimistic concurrency, 409 otherwise);
- traffic must name existing (or the new) revisions and sum to 100, tags once each;
- the generation moves on each write, `observedGeneration` catches up on a later read;
- each revision's Ready condition follows what the test asked for it: ready, never, or failed.
It also answers with faults a test queues (409, 429 and 503 with Retry-After), checks the
bearer token, and records every request and every traffic list written.
"""

from __future__ import annotations

import copy
import dataclasses
import datetime
import http.server
import json
import re
import threading
import urllib.parse
from collections.abc import Callable
from pathlib import Path

PREFIX = "/apis/serving.knative.dev/v1/namespaces/"
PATH = re.compile(
    r"^/apis/serving\.knative\.dev/v1/namespaces/([^/]+)/(services|revisions)(?:/([^/]+))?$"
)
READY, NEVER, FAIL = "ready", "never", "fail"
FIXTURE = Path(__file__).with_name("service_v1.json")
FAILED_CONDITION = {
    "type": "Ready",
    "status": "False",
    "reason": "HealthCheckContainerError",
    "message": "The user-provided container failed the configured startup probe checks.",
}


@dataclasses.dataclass
class Fault:
    method: str
    status: int
    retry_after: str | None = None
    after: int = 0  # requests of `method` answered normally first


class FakeRunApi:
    def __init__(self, token: str, backend_url: str) -> None:
        self.token = token
        self.backend_url = backend_url  # every URL Cloud Run would give routes here
        self.tag_urls: dict[str, str] = {}  # a tag's URL, when not backend_url
        self.modes: dict[str, str] = {}  # service -> READY / NEVER / FAIL of its new revisions
        self.on_write: Callable[[str, list[dict]], None] | None = None  # (service, traffic)
        self.faults: list[Fault] = []
        self.requests: list[tuple[str, str]] = []  # (method, path?query)
        self.writes: dict[str, list[list[dict]]] = {}  # service -> each spec.traffic written
        self.services: dict[str, dict] = {}
        self.revisions: dict[str, dict] = {}
        self._templates: dict[str, str] = {}  # revision -> its template, canonical JSON
        self._observed: dict[str, int] = {}
        self._version = 0
        self._lock = threading.Lock()
        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def seed(self, name: str, revision: str) -> None:
        """The service serving `revision` at 100%, as if deployed by someone else: created, or
        replaced when it exists (a write the test's `writes` do not list)."""
        template = {"metadata": {"name": revision}, "spec": {"containers": [{"image": "old"}]}}
        body = {
            "apiVersion": "serving.knative.dev/v1",
            "kind": "Service",
            "metadata": {"name": name},
            "spec": {"template": template, "traffic": [{"latestRevision": True, "percent": 100}]},
        }
        with self._lock:
            live = self.services.get(name)
            status, answer, _ = self._write("my-project", name, body, False, live)
            assert status == 200, answer
            self._observed[name] = answer["metadata"]["generation"]
            self.writes[name].pop()

    def count(self, method: str, kind: str = "services") -> int:
        return sum(1 for m, p in self.requests if m == method and f"/{kind}" in p)

    # --- the API -------------------------------------------------------------------------

    def _answer(
        self, method: str, path: str, query: dict, body: dict | None
    ) -> tuple[int, dict, dict]:
        match = PATH.match(path)
        if not match:
            return _error(404, "NOT_FOUND", f"no such path {path}")
        project, kind, name = match.groups()
        dry_run = query.get("dryRun") == ["all"]
        if kind == "revisions" and method == "GET" and name is None:
            selector = query.get("labelSelector", [""])[0]
            service = selector.removeprefix("serving.knative.dev/service=")
            items = [
                r
                for r in self.revisions.values()
                if r["metadata"]["labels"]["serving.knative.dev/service"] == service
            ]
            return 200, {"kind": "RevisionList", "metadata": {}, "items": items}, {}
        if kind == "revisions":
            if method != "GET" or name not in self.revisions:
                return _error(404, "NOT_FOUND", f"Revision named '{name}' not found.")
            return 200, self.revisions[name], {}
        if method == "GET":
            if name not in self.services:
                return _error(
                    404,
                    "NOT_FOUND",
                    f"Resource '{name}' of kind 'SERVICE' in region 'europe-west1' in project "
                    f"'{project}' does not exist.",
                )
            return 200, self._read(name), {}
        if method == "POST" and name is None:
            name = (body or {}).get("metadata", {}).get("name", "")
            if name in self.services:
                return _error(409, "ALREADY_EXISTS", f"Resource '{name}' already exists.")
            return self._write(project, name, body or {}, dry_run, None)
        if method == "PUT" and name:
            if name not in self.services:
                return _error(404, "NOT_FOUND", f"Resource '{name}' does not exist.")
            return self._write(project, name, body or {}, dry_run, self.services[name])
        return _error(405, "INVALID_ARGUMENT", f"{method} {path}")

    def _read(self, name: str) -> dict:
        """The service; a read after a write sees Cloud Run caught up (observedGeneration)."""
        service = self.services[name]
        generation = service["metadata"]["generation"]
        if self._observed.get(name, 0) < generation:
            self._observed[name] = generation  # the first read still shows the old status
            return _with_status(service, generation - 1)
        return _with_status(service, generation)

    def _write(
        self, project: str, name: str, body: dict, dry_run: bool, live: dict | None
    ) -> tuple[int, dict, dict]:
        problem = self._invalid(name, body, live)
        if problem:
            return problem
        template = body["spec"]["template"]
        revision = template["metadata"]["name"]
        canonical = json.dumps(template, sort_keys=True)
        if revision in self._templates and self._templates[revision] != canonical:
            return _error(
                409,
                "ALREADY_EXISTS",
                f"Revision named '{revision}' with different configuration already exists.",
            )
        if dry_run:
            return 200, _dry(body), {}
        self._version += 1
        generation = (live["metadata"]["generation"] + 1) if live else 1
        stored = copy.deepcopy(body)
        stored["metadata"].update(
            namespace="123456789012",
            selfLink=f"{PREFIX}123456789012/services/{name}",
            uid=f"uid-{name}",
            resourceVersion=f"v{self._version}",
            generation=generation,
            creationTimestamp="2026-01-01T00:00:00.000000Z",
        )
        # What Cloud Run adds to every service: its location label, who created and changed it.
        stored["metadata"].setdefault("labels", {}).setdefault(
            "cloud.googleapis.com/location", "europe-west1"
        )
        annotations = stored["metadata"].setdefault("annotations", {})
        for key in ("serving.knative.dev/creator", "serving.knative.dev/lastModifier"):
            annotations.setdefault(key, "deployer@kit-test.iam.gserviceaccount.com")
        created = live["status"]["latestCreatedRevisionName"] if live else ""
        if revision not in self._templates:
            self._templates[revision] = canonical
            self.revisions[revision] = self._revision(project, name, revision)
            created = revision
        ready = live["status"]["latestReadyRevisionName"] if live else ""
        if self.revisions[created]["status"]["conditions"][0]["status"] == "True":
            ready = created
        stored["status"] = {
            "observedGeneration": generation,
            "conditions": self._conditions(created),
            "latestReadyRevisionName": ready,
            "latestCreatedRevisionName": created,
            "traffic": [self._status_entry(e, ready) for e in body["spec"]["traffic"]],
            "url": self.backend_url,
            "address": {"url": self.backend_url},
        }
        if live:
            stored["previousStatus"] = live["status"]
        self.services[name] = stored
        self.writes.setdefault(name, []).append(copy.deepcopy(body["spec"]["traffic"]))
        if self.on_write is not None:
            self.on_write(name, body["spec"]["traffic"])
        return 200, _with_status(stored, generation - 1), {}

    def _invalid(self, name: str, body: dict, live: dict | None) -> tuple[int, dict, dict] | None:
        if body.get("apiVersion") != "serving.knative.dev/v1" or body.get("kind") != "Service":
            return _error(
                400, "INVALID_ARGUMENT", "apiVersion must be serving.knative.dev/v1, kind Service"
            )
        if body.get("metadata", {}).get("name") != name:
            return _error(400, "INVALID_ARGUMENT", "metadata.name must be the service's name")
        if live and body["metadata"].get("resourceVersion") not in (
            None,
            "",
            live["metadata"]["resourceVersion"],
        ):
            return _error(409, "ABORTED", "the resource has been modified; read it again")
        revision = body.get("spec", {}).get("template", {}).get("metadata", {}).get("name", "")
        if not revision.startswith(name + "-"):
            return _error(
                400, "INVALID_ARGUMENT", f"spec.template.metadata.name must start with '{name}-'"
            )
        entries = body["spec"].get("traffic", [])
        if sum(e.get("percent", 0) for e in entries) != 100:
            return _error(400, "INVALID_ARGUMENT", "spec.traffic: percents must sum to 100")
        tags = [e["tag"] for e in entries if e.get("tag")]
        if len(tags) != len(set(tags)):
            return _error(400, "INVALID_ARGUMENT", "spec.traffic: a tag may be used once")
        for entry in entries:
            if entry.get("latestRevision") and not entry.get("revisionName"):
                continue
            known = (
                entry.get("revisionName") in self.revisions or entry.get("revisionName") == revision
            )
            if not known:
                return _error(
                    400,
                    "INVALID_ARGUMENT",
                    f"Revision '{entry.get('revisionName')}' referenced in traffic not found.",
                )
        return None

    def _revision(self, project: str, service: str, name: str) -> dict:
        mode = self.modes.get(service, READY)
        condition = {"type": "Ready", "status": "True"}
        if mode == NEVER:
            condition = {
                "type": "Ready",
                "status": "Unknown",
                "reason": "Deploying",
                "message": "Starting the container.",
            }
        elif mode == FAIL:
            condition = dict(FAILED_CONDITION)
        condition["lastTransitionTime"] = _timestamp()
        return {
            "apiVersion": "serving.knative.dev/v1",
            "kind": "Revision",
            "metadata": {
                "name": name,
                "namespace": "123456789012",
                "creationTimestamp": _timestamp(),
                "labels": {
                    "serving.knative.dev/service": service,
                    "serving.knative.dev/configurationGeneration": str(len(self.revisions) + 1),
                },
            },
            "status": {"conditions": [condition], "observedGeneration": 1},
        }

    def _conditions(self, created: str) -> list[dict]:
        revision = self.revisions[created]["status"]["conditions"][0]
        ready = {"type": "Ready", "status": revision["status"]}
        configurations = {"type": "ConfigurationsReady", "status": revision["status"]}
        for condition in (ready, configurations):
            for key in ("reason", "message"):
                if key in revision:
                    condition[key] = revision[key]
        conditions = [ready, configurations, {"type": "RoutesReady", "status": "True"}]
        for condition in conditions:
            condition["lastTransitionTime"] = _timestamp()
        return conditions

    def _status_entry(self, entry: dict, ready: str) -> dict:
        revision = entry.get("revisionName") or ready
        shown = {"revisionName": revision}
        if entry.get("percent"):
            shown["percent"] = entry["percent"]  # as in Cloud Run's JSON: no key for 0 %
        if entry.get("latestRevision"):
            shown["latestRevision"] = True
        if entry.get("tag"):
            shown["tag"] = entry["tag"]
            shown["url"] = self.tag_urls.get(entry["tag"], self.backend_url)
        return shown

    # --- HTTP ----------------------------------------------------------------------------

    def _handler(self) -> type[http.server.BaseHTTPRequestHandler]:
        fake = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def _serve(self) -> None:
                parts = urllib.parse.urlsplit(self.path)
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                headers: dict = {}
                with fake._lock:
                    fake.requests.append((self.command, self.path))
                    fault = next((f for f in fake.faults if f.method == self.command), None)
                    if fault is not None and fault.after > 0:
                        fault.after -= 1
                        fault = None
                    if self.headers.get("Authorization") != f"Bearer {fake.token}":
                        status, body, _ = _error(
                            401,
                            "UNAUTHENTICATED",
                            "Request had invalid authentication credentials.",
                        )
                    elif fault is not None:
                        fake.faults.remove(fault)
                        status, body, _ = _error(
                            fault.status, _STATUS_NAMES[fault.status], "injected fault"
                        )
                        if fault.retry_after is not None:
                            headers["Retry-After"] = fault.retry_after
                    else:
                        body_in = json.loads(raw) if raw else None
                        status, body, headers = fake._answer(
                            self.command, parts.path, urllib.parse.parse_qs(parts.query), body_in
                        )
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json; charset=UTF-8")
                self.send_header("Content-Length", str(len(data)))
                for name, value in headers.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_PUT = do_POST = _serve

        return Handler


_STATUS_NAMES = {409: "ABORTED", 429: "RESOURCE_EXHAUSTED", 503: "UNAVAILABLE", 500: "INTERNAL"}


def _error(code: int, status: str, message: str) -> tuple[int, dict, dict]:
    """Google's error body: {"error": {"code", "message", "status"}}."""
    return code, {"error": {"code": code, "message": message, "status": status}}, {}


def _timestamp() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _dry(body: dict) -> dict:
    answer = copy.deepcopy(body)
    answer.setdefault("status", {})
    return answer


def _with_status(service: dict, observed: int) -> dict:
    """The service as a read right after the write shows it: the controller not caught up."""
    shown = copy.deepcopy(service)
    previous = shown.pop("previousStatus", None)
    if observed < service["metadata"]["generation"] and previous is not None:
        shown["status"] = copy.deepcopy(previous)
        shown["status"]["observedGeneration"] = observed
    elif observed < service["metadata"]["generation"]:
        shown["status"] = {
            "observedGeneration": observed,
            "conditions": [{"type": "Ready", "status": "Unknown"}],
        }
    return shown
