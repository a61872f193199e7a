"""The controller of the local Cloud Run: the Admin API's methods over services and revisions,
and their reconciliation. A create or replace stores the Service (services.py), then, in the
background and in order per service, starts the new revision, and moves the route to the spec's
traffic once every revision it names is Ready (routes.py). Until then the previous route
serves: a revision that fails never takes traffic. Revisions no route refers to are stopped.
"""

from __future__ import annotations

import copy
import dataclasses
import threading
import time
import uuid
from pathlib import Path

from tools.cloud_run import conditions, routes, validation
from tools.cloud_run.errors import ApiError
from tools.cloud_run.images import Images
from tools.cloud_run.revisions import Revision, generated_name, template_key
from tools.cloud_run.routes import Backend
from tools.cloud_run.runner import Instance, StartFailed
from tools.cloud_run.services import Service, stored


class Controller:
    def __init__(self, state_dir: Path, front_end_port: int, stop_grace_seconds: float) -> None:
        self.state_dir = state_dir
        self.front_end_port = front_end_port
        # host:port of the metadata endpoint that instances ask for ID tokens; main.py sets it
        # once it listens (a controller in a test may have none).
        self.metadata_host = ""
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
            service = Service(project, name, stored(document))
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
            return routes.known(self._services.values(), host)

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

    def _new_revision(self, service: Service, template: dict) -> str | None:
        """The name of the revision this template makes, or None when it makes none."""
        given = (template.get("metadata") or {}).get("name")
        if given:
            existing = self._revisions.get((service.project, given))
            if existing is None:
                return given
            # Revision names are one namespace per project: `ping-staging-00001-abc` starts
            # with `ping-`, yet service ping may not take it (nor make no revision of it).
            if existing.service != service.name:
                raise ApiError(
                    409,
                    f"Revision named '{given}' already exists and belongs to service "
                    f"'{existing.service}'.",
                )
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
        kept = stored(document)
        template = kept["spec"]["template"]
        revision_name = self._new_revision(service, template)
        if dry_run:
            preview = dataclasses.replace(service, document=kept)
            if revision_name:
                preview.revisions = [*service.revisions, revision_name]
            return self._render(preview, revision_name)
        changed = new or kept["spec"] != service.document["spec"]
        service.document = kept
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

    def _render(self, service: Service, dry_run_revision: str | None = None) -> dict:
        latest = self._revisions.get((service.project, service.latest_created))
        return service.resource(latest, self.front_end_port, dry_run_revision)

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
            self.metadata_host,
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

    def _route(self, service: Service) -> None:
        with self._lock:
            route, to_start, reason, message = routes.resolve(service, self._revisions)
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
            self._hosts = routes.hosts(
                self._services.values(), self._revisions, self.front_end_port
            )
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
