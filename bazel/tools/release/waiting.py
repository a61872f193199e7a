"""Waiting for Cloud Run to act on a replaced service: first the service (its
`status.observedGeneration` reaching the generation our write got, as the API reference tells
pollers to wait for), then the revision's own `Ready` condition.

The service's status is also where the known trap shows: an update whose template did not
change makes no revision yet succeeds. Once the service has caught up, its
`status.latestCreatedRevisionName` must be the revision this release named; anything else is
reported, never taken for success.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from bazel.tools.release.api import Api


class NotReady(Exception):
    """The revision did not become Ready: Cloud Run's reason and message, one line."""


def condition(resource: dict, kind: str = "Ready") -> dict:
    for entry in resource.get("status", {}).get("conditions", []):
        if entry.get("type") == kind:
            return entry
    return {}


def describe(entry: dict) -> str:
    """`Ready=False ContainerMissing: Image ... not found`, as Cloud Run words it."""
    if not entry:
        return "no Ready condition yet"
    text = f"{entry.get('type')}={entry.get('status')}"
    if entry.get("reason"):
        text += f" {entry['reason']}"
    if entry.get("message"):
        text += f": {' '.join(entry['message'].split())}"
    return text


class Waiter:
    """Polls every `interval` seconds until `timeout` seconds have passed."""

    def __init__(
        self,
        api: Api,
        timeout: float,
        interval: float,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.api = api
        self.timeout = timeout
        self.interval = interval
        self.sleep = sleep

    def reconciled(self, name: str, generation: int, settled: bool) -> dict:
        """The service once Cloud Run has seen our write; with `settled`, once its Ready
        condition is also True or False (a traffic change: the route is programmed)."""
        ends = time.monotonic() + self.timeout
        while True:
            service = self.api.get_service(name)
            if service is None:
                raise NotReady(f"service {name} vanished while we waited for it")
            status = service.get("status", {})
            caught_up = status.get("observedGeneration", 0) >= generation
            if caught_up and (not settled or condition(service).get("status") in ("True", "False")):
                return service
            if time.monotonic() + self.interval > ends:
                raise NotReady(
                    f"service {name} not reconciled within {self.timeout:g} s "
                    f"({describe(condition(service))})"
                )
            self.sleep(self.interval)

    def revision_ready(self, service_name: str, revision: str, generation: int) -> dict:
        """The service once `revision` is its latest created revision and is Ready."""
        ends = time.monotonic() + self.timeout
        service = self.reconciled(service_name, generation, settled=False)
        latest = service.get("status", {}).get("latestCreatedRevisionName")
        found = self.api.get_revision(revision)
        if latest != revision and found is None:
            raise NotReady(
                f"Cloud Run made no revision {revision} (its latest is {latest}): the update "
                "changed nothing it deploys"
            )
        # Else it made it now, or it was made before (by an earlier release of this build,
        # since the name is the template's hash) and does not serve now: it is the candidate.
        while True:
            ready = condition(found or {})
            if ready.get("status") == "True":
                return self.api.get_service(service_name) or service
            if ready.get("status") == "False":
                raise NotReady(f"revision {revision}: {describe(ready)}")
            if time.monotonic() + self.interval > ends:
                raise NotReady(
                    f"revision {revision} not Ready within {self.timeout:g} s: {describe(ready)}"
                )
            self.sleep(self.interval)
            found = self.api.get_revision(revision)
