"""The services of the local Cloud Run and their reconciliation: a create or replace stores the
Service (a new revision only when the template changed, as Cloud Run does), then, in the
background and in order per service, starts the new revision, and moves the route to the
spec's traffic once every revision it names is Ready. Until then the previous route serves:
a revision that fails never takes traffic. Revisions no route refers to are stopped.

Resource shapes follow Cloud Run Admin API v1 (namespaces.services, namespaces.revisions).
"""

from __future__ import annotations

import copy
import dataclasses
import threading
import time
import uuid
from pathlib import Path

from tools.cloud_run import conditions, validation
from tools.cloud_run.errors import ApiError
from tools.cloud_run.images import Images
from tools.cloud_run.revisions import Revision, generated_name, template_key
from tools.cloud_run.runner import Instance, StartFailed

API = "/apis/serving.knative.dev/v1"
# Cloud Run's traffic when the Service names none.
DEFAULT_TRAFFIC = [{"percent": 100, "latestRevision": True}]
TAG_SEPARATOR = "---"
# Who Cloud Run records as creator and last modifier: the caller's email. Tokens are not
# checked here, so nobody is known.
ANONYMOUS = "anonymous@localhost"


@dataclasses.dataclass(frozen=True)
class Backend:
    """A revision's instance behind a host, with its share of the host's traffic."""

    percent: int
    port: int
    revision: str


@dataclasses.dataclass
class Service:
    project: str
    name: str
    document: dict
    generation: int = 1
    observed_generation: int = 0
    uid: str = dataclasses.field(default_factory=lambda: str(uuid.uuid4()))
    resource_version: str = dataclasses.field(default_factory=lambda: uuid.uuid4().hex)
    created: str = dataclasses.field(default_factory=conditions.now)
    revisions: list[str] = dataclasses.field(default_factory=list)
    latest_ready: str | None = None
    # The applied route: status.traffic entries without URLs.
    route: list[dict] = dataclasses.field(default_factory=list)
    routes_ready: tuple[str, str, str] = (conditions.UNKNOWN, "", "")
    routes_changed: str = dataclasses.field(default_factory=conditions.now)
    reconciling: threading.Lock = dataclasses.field(default_factory=threading.Lock)

    @property
    def latest_created(self) -> str:
        return self.revisions[-1]

    def traffic(self) -> list[dict]:
        return self.document["spec"].get("traffic") or DEFAULT_TRAFFIC


class Controller:
    def __init__(self, state_dir: Path, front_end_port: int, stop_grace_seconds: float) -> None:
        self.state_dir = state_dir
        self.front_end_port = front_end_port
        self.stop_grace_seconds = stop_grace_seconds
        self.images = Images(state_dir / "images")
        self._lock = threading.RLock()
        self._services: dict[tuple[str, str], Service] = {}
        self._revisions: dict[tuple[str, str], Revision] = {}
        # host (no port) -> [Backend], rebuilt when a route changes.
        self._hosts: dict[str, list[Backend]] = {}
        self._threads: list[threading.Thread] = []

    # The Admin API's methods.

    def get(self, project: str, name: str) -> dict:
        with self._lock:
            return self._render(self._service(project, name))

    def list_services(self, project: str) -> dict:
        with self._lock:
            items = [
                self._render(s) for (p, _), s in sorted(self._services.items()) if p == project
            ]
        return {"apiVersion": "serving.knative.dev/v1", "kind": "ServiceList", "items": items}

    def create(self, project: str, document: object, dry_run: bool) -> dict:
        with self._lock:
            problems = validation.problems(document, None, set())
            if problems:
                raise ApiError(400, " ".join(problems))
            name = document["metadata"]["name"]
            if (project, name) in self._services:
                raise ApiError(409, f"Resource '{name}' already exists.")
            service = Service(project, name, self._stored(document))
            return self._apply(service, document, dry_run, new=True)

    def replace(self, project: str, name: str, document: object, dry_run: bool) -> dict:
        with self._lock:
            service = self._service(project, name)
            known = set(service.revisions)
            problems = validation.problems(document, name, known)
            if problems:
                raise ApiError(400, " ".join(problems))
            expected = (document.get("metadata") or {}).get("resourceVersion")
            if expected and expected != service.resource_version:
                raise ApiError(
                    409,
                    "The object has been modified; please apply your changes to the latest "
                    "version and try again.",
                    "ABORTED",
                )
            return self._apply(service, document, dry_run, new=False)

    def revision(self, project: str, name: str) -> dict:
        with self._lock:
            revision = self._revisions.get((project, name))
            if revision is None:
                raise ApiError(404, f"Revision '{name}' in namespace '{project}' not found.")
            return revision.resource()

    def list_revisions(self, project: str, service: str | None) -> dict:
        with self._lock:
            items = [
                r.resource()
                for (p, _), r in sorted(self._revisions.items())
                if p == project and service in (None, r.service)
            ]
        return {"apiVersion": "serving.knative.dev/v1", "kind": "RevisionList", "items": items}

    # The front end's view.

    def backends(self, host: str) -> list[Backend]:
        """Where a host of a service or tag goes, by percent; empty when nothing serves it."""
        with self._lock:
            return list(self._hosts.get(host.lower(), []))

    def knows(self, host: str) -> bool:
        """Whether `host` is a service's or one of its tags' (served or not)."""
        with self._lock:
            for service in self._services.values():
                main = self.host(service)
                tags = {
                    f"{t['tag']}{TAG_SEPARATOR}{main}" for t in service.traffic() if t.get("tag")
                }
                if host == main or host in tags:
                    return True
        return False

    def close(self) -> None:
        """Stops every instance (SIGTERM, grace, SIGKILL), in parallel."""
        with self._lock:
            instances = [r.instance for r in self._revisions.values() if r.instance]
        stoppers = [threading.Thread(target=i.stop) for i in instances]
        for thread in stoppers:
            thread.start()
        for thread in stoppers:
            thread.join()

    def wait_idle(self) -> None:
        """Joins every reconciliation started so far (for tests and shutdown)."""
        for thread in list(self._threads):
            thread.join()

    # Storing.

    def _service(self, project: str, name: str) -> Service:
        service = self._services.get((project, name))
        if service is None:
            raise ApiError(
                404,
                f"Resource '{name}' of kind 'SERVICE' in namespace '{project}' does not exist.",
            )
        return service

    @staticmethod
    def _stored(document: dict) -> dict:
        """The parts of a Service a client may set: metadata's labels and annotations, spec."""
        metadata = document.get("metadata") or {}
        return {
            "labels": dict(metadata.get("labels") or {}),
            "annotations": dict(metadata.get("annotations") or {}),
            "spec": copy.deepcopy(document["spec"]),
        }

    def _new_revision(self, service: Service, template: dict) -> str | None:
        """The name of the revision this template makes, or None when it makes none."""
        given = (template.get("metadata") or {}).get("name")
        if given:
            existing = self._revisions.get((service.project, given))
            if existing is None:
                return given
            if existing.key() != template_key(template):
                raise ApiError(
                    409, f"Revision named '{given}' with different configuration already exists."
                )
            return None
        if service.revisions:
            latest = self._revisions[(service.project, service.latest_created)]
            if latest.key() == template_key(template):
                return None
        return generated_name(service.name, len(service.revisions) + 1)

    def _apply(self, service: Service, document: dict, dry_run: bool, new: bool) -> dict:
        stored = self._stored(document)
        template = stored["spec"]["template"]
        revision_name = self._new_revision(service, template)
        if dry_run:
            preview = dataclasses.replace(service, document=stored)
            if revision_name:
                preview.revisions = [*service.revisions, revision_name]
            return self._render(preview, revision_name)
        changed = new or stored["spec"] != service.document["spec"]
        service.document = stored
        service.resource_version = uuid.uuid4().hex
        if changed and not new:
            service.generation += 1
        if revision_name:
            revision = Revision(
                service.project,
                service.name,
                revision_name,
                copy.deepcopy(template),
                len(service.revisions) + 1,
            )
            self._revisions[(service.project, revision_name)] = revision
            service.revisions.append(revision_name)
        self._services[(service.project, service.name)] = service
        if changed:
            service.routes_ready = (conditions.UNKNOWN, "", "")
            thread = threading.Thread(
                target=self._reconcile, args=(service,), name=f"reconcile {service.name}"
            )
            self._threads.append(thread)
            thread.start()
        return self._render(service)

    # Reconciling, in the background.

    def _reconcile(self, service: Service) -> None:
        with service.reconciling:
            with self._lock:
                generation = service.generation
                latest = self._revisions[(service.project, service.latest_created)]
            if latest.ready == conditions.UNKNOWN:
                self._start(service, latest)
            self._route(service)
            with self._lock:
                service.observed_generation = max(service.observed_generation, generation)

    def _start(self, service: Service, revision: Revision) -> bool:
        """Starts an instance of the revision; records Ready or why not."""
        instance = Instance(
            service.name,
            revision.name,
            revision.template["spec"],
            self.state_dir / "revisions" / service.project / revision.name,
            self.images,
            self.stop_grace_seconds,
        )
        started = time.monotonic()
        try:
            instance.start()
        except StartFailed as failure:
            with self._lock:
                revision.settle(conditions.FALSE, failure.reason, failure.message)
            print(f"{revision.name}: not Ready: {failure.reason}: {failure.message}", flush=True)
            return False
        with self._lock:
            revision.instance = instance
            if revision.ready != conditions.TRUE:
                revision.settle(conditions.TRUE)
            latest_ready = self._revisions.get((service.project, service.latest_ready or ""))
            if latest_ready is None or revision.number > latest_ready.number:
                service.latest_ready = revision.name
        took = time.monotonic() - started
        print(
            f"{revision.name}: Ready on 127.0.0.1:{instance.port} in {took:.1f} s "
            f"(image {instance.image_seconds:.1f} s)",
            flush=True,
        )
        return True

    def _resolve(self, service: Service) -> tuple[list[dict], list[Revision], str, str]:
        """(route, revisions to start, reason, message) for the service's spec traffic; a
        reason when it cannot be applied now."""
        route, to_start = [], []
        for target in service.traffic():
            name = target.get("revisionName") or service.latest_ready
            if name is None:
                return (
                    [],
                    [],
                    conditions.REVISION_MISSING,
                    (f"Configuration '{service.name}' does not have any ready Revision."),
                )
            revision = self._revisions[(service.project, name)]
            if revision.ready == conditions.FALSE and revision.instance is None:
                return (
                    [],
                    [],
                    conditions.REVISION_FAILED,
                    conditions.not_ready(name, revision.message),
                )
            if revision.instance is None and revision not in to_start:
                to_start.append(revision)
            entry = {"revisionName": name, "percent": target.get("percent", 0)}
            if not target.get("revisionName"):
                entry["latestRevision"] = True
            if target.get("tag"):
                entry["tag"] = target["tag"]
            route.append(entry)
        return route, to_start, "", ""

    def _route(self, service: Service) -> None:
        with self._lock:
            route, to_start, reason, message = self._resolve(service)
        # A revision that had been stopped (no route referred to it) starts again first.
        for revision in to_start:
            if not self._start(service, revision):
                with self._lock:
                    route, reason = [], conditions.REVISION_FAILED
                    message = conditions.not_ready(revision.name, revision.message)
        with self._lock:
            if reason:
                service.routes_ready = (conditions.FALSE, reason, message)
                service.routes_changed = conditions.now()
                return
            service.route = route
            service.routes_ready = (conditions.TRUE, "", "")
            service.routes_changed = conditions.now()
            self._rebuild_hosts()
            serving = {e["revisionName"] for e in route}
            retired = [
                self._revisions[(service.project, name)]
                for name in service.revisions
                if name not in serving and self._revisions[(service.project, name)].instance
            ]
            instances = [r.instance for r in retired]
            for revision in retired:
                revision.instance = None
        for instance in instances:
            print(f"{instance.revision}: no traffic or tag refers to it: stopping", flush=True)
            instance.stop()

    def _rebuild_hosts(self) -> None:
        hosts: dict[str, list[Backend]] = {}
        for service in self._services.values():
            main = self.host(service)
            for entry in service.route:
                instance = self._revisions[(service.project, entry["revisionName"])].instance
                if instance is None:
                    continue
                name = entry["revisionName"]
                if entry["percent"]:
                    hosts.setdefault(main, []).append(
                        Backend(entry["percent"], instance.port, name)
                    )
                if "tag" in entry:
                    hosts[f"{entry['tag']}{TAG_SEPARATOR}{main}"] = [
                        Backend(100, instance.port, name)
                    ]
        self._hosts = hosts

    # Rendering.

    @staticmethod
    def host(service: Service) -> str:
        return f"{service.name}.{service.project}.localhost"

    def _url(self, host: str) -> str:
        return f"http://{host}:{self.front_end_port}"

    def _render(self, service: Service, dry_run_revision: str | None = None) -> dict:
        """The v1 Service: metadata, spec as stored, status as observed."""
        metadata = {
            "name": service.name,
            "namespace": service.project,
            "selfLink": f"{API}/namespaces/{service.project}/services/{service.name}",
            "uid": service.uid,
            "resourceVersion": service.resource_version,
            "generation": service.generation,
            "creationTimestamp": service.created,
            "labels": dict(service.document["labels"]),
            "annotations": service.document["annotations"]
            | {
                "serving.knative.dev/creator": ANONYMOUS,
                "serving.knative.dev/lastModifier": ANONYMOUS,
            },
        }
        spec = copy.deepcopy(service.document["spec"])
        spec.setdefault("traffic", copy.deepcopy(DEFAULT_TRAFFIC))
        main = self.host(service)
        traffic = []
        for entry in service.route:
            shown = {k: v for k, v in entry.items() if v}  # Cloud Run leaves out 0 and false
            if "tag" in entry:
                shown["url"] = self._url(f"{entry['tag']}{TAG_SEPARATOR}{main}")
            traffic.append(shown)
        status: dict = {
            "observedGeneration": service.observed_generation,
            "conditions": self._conditions(service, dry_run_revision),
            "latestCreatedRevisionName": service.latest_created if service.revisions else None,
            "latestReadyRevisionName": service.latest_ready,
            "traffic": traffic,
            "url": self._url(main),
            "address": {"url": self._url(main)},
        }
        status = {k: v for k, v in status.items() if v is not None}
        return {
            "apiVersion": "serving.knative.dev/v1",
            "kind": "Service",
            "metadata": metadata,
            "spec": spec,
            "status": status,
        }

    def _conditions(self, service: Service, dry_run_revision: str | None) -> list[dict]:
        latest = self._revisions.get((service.project, service.latest_created))
        if latest is None or dry_run_revision:
            configuration = conditions.condition(
                "ConfigurationsReady", conditions.UNKNOWN, service.created
            )
        elif latest.ready == conditions.FALSE:
            configuration = conditions.condition(
                "ConfigurationsReady",
                conditions.FALSE,
                latest.transitioned,
                conditions.REVISION_FAILED,
                conditions.not_ready(latest.name, latest.message),
            )
        else:
            configuration = conditions.condition(
                "ConfigurationsReady", latest.ready, latest.transitioned
            )
        status, reason, message = service.routes_ready
        routes = conditions.condition(
            "RoutesReady", status, service.routes_changed, reason, message
        )
        parts = [configuration, routes]
        worst = next(
            (c for c in parts if c["status"] == conditions.FALSE),
            next((c for c in parts if c["status"] == conditions.UNKNOWN), None),
        )
        if worst is None:
            ready = conditions.condition(
                "Ready", conditions.TRUE, max(c["lastTransitionTime"] for c in parts)
            )
        else:
            ready = dict(worst, type="Ready")
        return [ready, configuration, routes]
