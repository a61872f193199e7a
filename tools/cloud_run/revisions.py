"""A revision: an immutable template with its name, its state (Unknown until its instance is
Ready or failed), the instance serving it while traffic or a tag refers to it, and its v1
Revision resource as the Admin API returns it."""

from __future__ import annotations

import copy
import dataclasses
import json
import secrets
import string
import uuid

from tools.cloud_run import conditions
from tools.cloud_run.runner import Instance

API_VERSION = "serving.knative.dev/v1"


def template_key(template: dict) -> str:
    """What makes two templates the same revision: all of it but the revision name."""
    template = copy.deepcopy(template)
    (template.get("metadata") or {}).pop("name", None)
    return json.dumps(template, sort_keys=True)


def generated_name(service: str, number: int) -> str:
    """Cloud Run's `SERVICE-00001-xyz`: a counter and three random letters."""
    suffix = "".join(secrets.choice(string.ascii_lowercase) for _ in range(3))
    return f"{service}-{number:05d}-{suffix}"


@dataclasses.dataclass
class Revision:
    project: str
    service: str
    name: str
    template: dict
    number: int
    created: str = dataclasses.field(default_factory=conditions.now)
    uid: str = dataclasses.field(default_factory=lambda: str(uuid.uuid4()))
    ready: str = conditions.UNKNOWN
    reason: str = ""
    message: str = ""
    transitioned: str = dataclasses.field(default_factory=conditions.now)
    instance: Instance | None = None

    def settle(self, ready: str, reason: str = "", message: str = "") -> None:
        self.ready, self.reason, self.message = ready, reason, message
        self.transitioned = conditions.now()

    def key(self) -> str:
        return template_key(self.template)

    def resource(self) -> dict:
        """The v1 Revision, as namespaces.revisions.get returns it."""
        annotations = dict((self.template.get("metadata") or {}).get("annotations") or {})
        ready, healthy = (
            conditions.condition(kind, self.ready, self.transitioned, self.reason, self.message)
            for kind in ("Ready", "ContainerHealthy")
        )
        container = self.template["spec"]["containers"][0]
        return {
            "apiVersion": API_VERSION,
            "kind": "Revision",
            "metadata": {
                "name": self.name,
                "namespace": self.project,
                "selfLink": f"/apis/{API_VERSION}/namespaces/{self.project}/revisions/{self.name}",
                "uid": self.uid,
                "resourceVersion": self.uid,
                "generation": 1,
                "creationTimestamp": self.created,
                "labels": {
                    "serving.knative.dev/service": self.service,
                    "serving.knative.dev/configuration": self.service,
                    "serving.knative.dev/configurationGeneration": str(self.number),
                },
                "annotations": annotations,
            },
            "spec": copy.deepcopy(self.template["spec"]),
            "status": {
                "observedGeneration": 1,
                "conditions": [ready, healthy],
                "imageDigest": container["image"],
            },
        }
