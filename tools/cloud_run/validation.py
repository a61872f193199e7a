"""What the Admin API refuses before it stores anything (and all that `?dryRun=all` does): a
Service document that Cloud Run would reject with 400 INVALID_ARGUMENT, plus what this local
Cloud Run cannot run (said so in the message). Each problem is one sentence."""

from __future__ import annotations

import re

API_VERSION = "serving.knative.dev/v1"
# Cloud Run's rule for service names (a DNS label, at most 49 characters) and for tags.
_NAME = re.compile(r"^[a-z]([-a-z0-9]{0,47}[a-z0-9])?$")
_TAG = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
# Set by Cloud Run itself; a manifest may not set them.
RESERVED_ENV = ("PORT", "K_SERVICE", "K_REVISION", "K_CONFIGURATION")


def problems(document: object, name: str | None, known_revisions: set[str]) -> list[str]:
    """Every problem of `document` as a Service named `name` (None: whatever it says);
    `known_revisions` are those traffic may name besides the template's own."""
    if not isinstance(document, dict):
        return ["The request body is not a JSON object."]
    found = []
    if document.get("apiVersion") != API_VERSION:
        found.append(f"apiVersion must be '{API_VERSION}'.")
    if document.get("kind") != "Service":
        found.append("kind must be 'Service'.")
    metadata = document.get("metadata") or {}
    service = metadata.get("name", "")
    if not _NAME.match(service):
        found.append(f"metadata.name '{service}' is not a valid service name.")
    elif name is not None and service != name:
        found.append(f"metadata.name '{service}' does not match the name in the URL '{name}'.")
    template = (document.get("spec") or {}).get("template") or {}
    revision = (template.get("metadata") or {}).get("name")
    if revision is not None and not revision.startswith(f"{service}-"):
        found.append(f"spec.template.metadata.name '{revision}' must start with '{service}-'.")
    containers = (template.get("spec") or {}).get("containers") or []
    if len(containers) != 1:
        found.append("spec.template.spec.containers must have exactly one container here.")
    else:
        found += _container_problems(containers[0])
    found += _traffic_problems(
        (document.get("spec") or {}).get("traffic"), known_revisions | {revision} - {None}
    )
    return found


def _container_problems(container: dict) -> list[str]:
    found = []
    if not container.get("image"):
        found.append("spec.template.spec.containers[0].image is required.")
    for entry in container.get("env") or []:
        if entry.get("name") in RESERVED_ENV:
            found.append(f"The env var '{entry['name']}' is reserved by Cloud Run.")
    security = container.get("securityContext") or {}
    if security.get("runAsUser") == 0:
        # This process is root: the container would be root on the host's network.
        found.append(
            "securityContext.runAsUser 0 asks for root: the local Cloud Run runs no container "
            "as root."
        )
    elif security:
        found.append(
            "securityContext: the local Cloud Run runs the image's own non-root USER; remove it."
        )
    probe = container.get("startupProbe")
    if probe and not ("grpc" in probe or "tcpSocket" in probe):
        found.append("startupProbe: the local Cloud Run runs gRPC and TCP probes only.")
    return found


def _traffic_problems(traffic: object, revisions: set[str]) -> list[str]:
    if traffic is None:
        return []
    if not isinstance(traffic, list) or not all(isinstance(t, dict) for t in traffic):
        return ["spec.traffic must be a list of traffic targets."]
    found = []
    total = 0
    tags = set()
    for index, target in enumerate(traffic):
        where = f"spec.traffic[{index}]"
        percent = target.get("percent", 0)
        if not isinstance(percent, int) or not 0 <= percent <= 100:
            found.append(f"{where}.percent must be an integer from 0 to 100.")
        else:
            total += percent
        revision = target.get("revisionName")
        latest = target.get("latestRevision", revision is None)
        if revision and latest:
            found.append(f"{where}: latestRevision must be false when revisionName is set.")
        elif revision is None and not latest:
            found.append(f"{where}: either revisionName or latestRevision: true is required.")
        elif revision and revision not in revisions:
            found.append(f"Revision '{revision}' referenced in traffic not found.")
        if target.get("configurationName"):
            found.append(f"{where}.configurationName is not supported in Cloud Run.")
        tag = target.get("tag")
        if tag is not None:
            if not _TAG.match(tag):
                found.append(f"{where}.tag '{tag}' is not a valid tag.")
            elif tag in tags:
                found.append(f"Tag '{tag}' is used by more than one traffic target.")
            tags.add(tag)
    if traffic and total != 100:
        found.append(f"spec.traffic percents must sum to 100, not {total}.")
    return found
