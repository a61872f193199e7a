"""A service of the local Cloud Run: the document a client stored (a new revision only when the
template changed, as Cloud Run does), what the controller observed of it (its revisions, the
route it applied, whether that route is ready), its hosts, and its v1 Service resource as the
Admin API returns it.

Resource shapes follow Cloud Run Admin API v1 (namespaces.services).
"""

from __future__ import annotations

import copy
import dataclasses
import threading
import uuid

from tools.cloud_run import conditions
from tools.cloud_run.revisions import Revision

API = "/apis/serving.knative.dev/v1"
# Cloud Run's traffic when the Service names none.
DEFAULT_TRAFFIC = [{"percent": 100, "latestRevision": True}]
TAG_SEPARATOR = "---"
# Who Cloud Run records as creator and last modifier: the caller's email. Tokens are not
# checked here, so nobody is known.
ANONYMOUS = "anonymous@localhost"


def stored(document: dict) -> dict:
    """The parts of a Service a client may set: metadata's labels and annotations, spec."""
    metadata = document.get("metadata") or {}
    return {
        "labels": dict(metadata.get("labels") or {}),
        "annotations": dict(metadata.get("annotations") or {}),
        "spec": copy.deepcopy(document["spec"]),
    }


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
    def latest_created(self) -> str | None:
        """None before the first revision (a dry run's preview of a create that makes none)."""
        return self.revisions[-1] if self.revisions else None

    @property
    def host(self) -> str:
        """The host (no port) the front end serves this service at."""
        return f"{self.name}.{self.project}.localhost"

    def url(self, front_end_port: int) -> str:
        """The service's URL: the audience of the ID tokens its callers send."""
        return _url(self.host, front_end_port)

    def tag_host(self, tag: str) -> str:
        """The host of one of the route's tags: its revision alone."""
        return f"{tag}{TAG_SEPARATOR}{self.host}"

    def traffic(self) -> list[dict]:
        return self.document["spec"].get("traffic") or DEFAULT_TRAFFIC

    def resource(
        self, latest: Revision | None, front_end_port: int, dry_run_revision: str | None = None
    ) -> dict:
        """The v1 Service: metadata, spec as stored, status as observed. `latest` is the
        latest created revision, None before there is one."""
        metadata = {
            "name": self.name,
            "namespace": self.project,
            "selfLink": f"{API}/namespaces/{self.project}/services/{self.name}",
            "uid": self.uid,
            "resourceVersion": self.resource_version,
            "generation": self.generation,
            "creationTimestamp": self.created,
            "labels": dict(self.document["labels"]),
            "annotations": self.document["annotations"]
            | {
                "serving.knative.dev/creator": ANONYMOUS,
                "serving.knative.dev/lastModifier": ANONYMOUS,
            },
        }
        spec = copy.deepcopy(self.document["spec"])
        spec.setdefault("traffic", copy.deepcopy(DEFAULT_TRAFFIC))
        traffic = []
        for entry in self.route:
            shown = {k: v for k, v in entry.items() if v}  # Cloud Run leaves out 0 and false
            if "tag" in entry:
                shown["url"] = _url(self.tag_host(entry["tag"]), front_end_port)
            traffic.append(shown)
        status: dict = {
            "observedGeneration": self.observed_generation,
            "conditions": self._conditions(latest, dry_run_revision),
            "latestCreatedRevisionName": self.latest_created,
            "latestReadyRevisionName": self.latest_ready,
            "traffic": traffic,
            "url": self.url(front_end_port),
            "address": {"url": self.url(front_end_port)},
        }
        status = {k: v for k, v in status.items() if v is not None}
        return {
            "apiVersion": "serving.knative.dev/v1",
            "kind": "Service",
            "metadata": metadata,
            "spec": spec,
            "status": status,
        }

    def _conditions(self, latest: Revision | None, dry_run_revision: str | None) -> list[dict]:
        if latest is None or dry_run_revision:
            configuration = conditions.condition(
                "ConfigurationsReady", conditions.UNKNOWN, self.created
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
        status, reason, message = self.routes_ready
        routes = conditions.condition("RoutesReady", status, self.routes_changed, reason, message)
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


def _url(host: str, front_end_port: int) -> str:
    return f"http://{host}:{front_end_port}"
