"""Traffic routing: which revisions a service's spec traffic names and whether that route can
be applied now, and, from the routes applied, where each host goes. A service's host splits by
the route's percents; a tag's host goes to its revision only. Only revisions with an instance
serve: the front end answers the others' hosts itself (front_end.py).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping

from tools.cloud_run import conditions
from tools.cloud_run.invoker_check import Access, access_of
from tools.cloud_run.revisions import Revision
from tools.cloud_run.services import Service

# Revisions by (project, name).
Revisions = Mapping[tuple[str, str], Revision]


@dataclasses.dataclass(frozen=True)
class Backend:
    """A revision's instance behind a host, with its share of the host's traffic."""

    percent: int
    port: int
    revision: str
    # Who may call through it: the service's invoker check.
    access: Access


def resolve(service: Service, revisions: Revisions) -> tuple[list[dict], list[Revision], str, str]:
    """(route, revisions to start, reason, message) for the service's spec traffic; a reason
    when it cannot be applied now."""
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
        revision = revisions[(service.project, name)]
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


def hosts(
    services: Iterable[Service], revisions: Revisions, front_end_port: int
) -> dict[str, list[Backend]]:
    """Host (no port) -> where its connections go, from every service's applied route."""
    found: dict[str, list[Backend]] = {}
    for service in services:
        access = access_of(service.document["annotations"], service.url(front_end_port))
        for entry in service.route:
            instance = revisions[(service.project, entry["revisionName"])].instance
            if instance is None:
                continue
            name = entry["revisionName"]
            if entry["percent"]:
                found.setdefault(service.host, []).append(
                    Backend(entry["percent"], instance.port, name, access)
                )
            if "tag" in entry:
                found[service.tag_host(entry["tag"])] = [Backend(100, instance.port, name, access)]
    return found


def known(services: Iterable[Service], host: str) -> bool:
    """Whether `host` is a service's or one of its spec's tags' (served or not)."""
    for service in services:
        tags = {service.tag_host(t["tag"]) for t in service.traffic() if t.get("tag")}
        if host == service.host or host in tags:
            return True
    return False
