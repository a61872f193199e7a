"""One service's release, step by step: create the candidate revision with no traffic, wait
for it, smoke-test it at its tag URL, shift traffic to it in steps with a health check after
each, and put the traffic back where it was when a step fails. Also the rollback command.

Each write is a whole-service replace (the v1 API has no patch) carrying the resourceVersion
last read, so a concurrent change makes it fail with 409 instead of being overwritten; then the
service is read again and the write recomputed, a few times.
"""

from __future__ import annotations

import copy
import dataclasses
import time
from collections.abc import Callable

import grpc

from bazel.tools.release import checks, report, smoke, traffic
from bazel.tools.release.api import Api, ApiError, Conflict
from bazel.tools.release.report import Outcome
from bazel.tools.release.waiting import NotReady, Waiter

CONFLICT_ATTEMPTS = 5


@dataclasses.dataclass
class Settings:
    dry_run: bool
    steps: list[int]
    step_wait: float
    smoke_timeout: float


class Failed(Exception):
    """This service's release stops here; the message is its summary's detail."""


def tag_url(service: dict, tag: str) -> str:
    for entry in service.get("status", {}).get("traffic", []):
        if entry.get("tag") == tag and entry.get("url"):
            return entry["url"]
    raise Failed(f"Cloud Run gave no URL for the tag {tag!r}")


class Rollout:
    """Releases `manifest` as the service `outcome.name`."""

    def __init__(
        self,
        api: Api,
        waiter: Waiter,
        settings: Settings,
        credentials: Callable[[str], grpc.CallCredentials | None],
        outcome: Outcome,
        manifest: dict,
        declared: list[checks.Check],
    ) -> None:
        self.api = api
        self.waiter = waiter
        self.settings = settings
        self.credentials = credentials
        self.outcome = outcome
        self.manifest = manifest
        self.declared = declared  # the service's own smoke checks, run once, after health
        self.name = outcome.name
        template = manifest["spec"]["template"]
        self.revision = traffic.revision_name(self.name, template)
        outcome.revision = self.revision
        self.service_url = ""  # the service's URL: the audience of the smoke tests' ID tokens
        self.baseline: list[dict] = []  # the traffic before the release, revisions pinned

    def document(self, traffic_entries: list[dict], live: dict | None) -> dict:
        body = copy.deepcopy(self.manifest)
        body["spec"]["template"].setdefault("metadata", {})["name"] = self.revision
        body["spec"]["traffic"] = traffic_entries
        if live is not None:
            body["metadata"]["resourceVersion"] = live["metadata"].get("resourceVersion", "")
        return body

    def write(
        self, make_traffic: Callable[[dict | None], list[dict]], dry_run: bool = False
    ) -> dict:
        """Creates or replaces the service with the traffic `make_traffic(live)`; on 409 reads
        it again and retries."""
        for attempt in range(1, CONFLICT_ATTEMPTS + 1):
            live = self.api.get_service(self.name)
            body = self.document(make_traffic(live), live)
            try:
                if live is None:
                    return self.api.create_service(body, dry_run)
                return self.api.replace_service(self.name, body, dry_run)
            except Conflict as error:
                if attempt == CONFLICT_ATTEMPTS:
                    raise
                report.progress(f"{self.outcome.label}: conflict, reading it again ({error})")
        raise AssertionError("unreachable")

    def candidate(self, live: dict | None) -> list[dict]:
        """The live traffic plus the candidate at 0 % (all of it for a new service); the live
        traffic, read again after a conflict, becomes the baseline that steps and rollback use."""
        if live is None:
            self.baseline = []
            return traffic.first_traffic(self.revision)
        self.baseline = traffic.pinned(live.get("status", {}).get("traffic", []))
        return traffic.with_candidate(self.baseline, self.revision)

    def smoke(self, url: str, declared: list[checks.Check]) -> list[str]:
        audience = self.service_url or url
        return smoke.check(
            url, lambda: self.credentials(audience), self.settings.smoke_timeout, declared
        )

    def run(self) -> None:
        o = self.outcome
        live = self.api.get_service(self.name)
        baseline = traffic.pinned(live.get("status", {}).get("traffic", [])) if live else []
        o.traffic = traffic.serving(baseline)
        self.service_url = (live or {}).get("status", {}).get("url", "")
        if o.traffic == {self.revision: 100}:
            o.result = report.NO_OP
            o.step("no-op", f"{self.revision} already serves 100%, no revision made")
            return
        self.baseline = baseline
        if self.settings.dry_run:
            self.write(self.candidate, dry_run=True)
            o.result = report.VALIDATED
            o.step(
                "dry run",
                f"the Admin API accepts {self.revision} ({'replace' if live else 'create'})",
            )
            return
        written = self.write(self.candidate)
        baseline = self.baseline
        action = "replaced" if live else "created"
        o.step(
            "revision",
            f"{action} the service, revision {self.revision} at 0% tag {traffic.CANDIDATE_TAG}"
            if live
            else f"created the service, revision {self.revision}",
        )
        try:
            service = self.waiter.revision_ready(
                self.name, self.revision, written["metadata"]["generation"]
            )
        except NotReady as error:
            raise Failed(f"{error}; traffic left as it was") from None
        self.service_url = service.get("status", {}).get("url", "") or self.service_url
        o.step("ready", f"revision {self.revision} is Ready")
        url = tag_url(service, traffic.CANDIDATE_TAG)
        try:
            checked = self.smoke(url, self.declared)
        except (smoke.SmokeFailure, checks.CheckFailed, grpc.RpcError) as error:
            if not live:
                raise Failed(
                    f"smoke test failed: {error}; a new service, nothing to roll back to"
                ) from None
            raise Failed(f"smoke test failed: {error}; traffic left as it was") from None
        o.step(
            "smoke",
            f"{len(checked)} health checks SERVING at {url},"
            f" {len(self.declared)} declared checks passed",
        )
        if not live:
            o.traffic = {self.revision: 100}
            o.result = report.RELEASED
            o.step("traffic", "100% (a new service)")
            return
        for percent in self.settings.steps:
            entries = traffic.step(baseline, self.revision, percent)
            try:
                shifted = self.write(lambda _, entries=entries: entries)
                self.waiter.reconciled(self.name, shifted["metadata"]["generation"], settled=True)
                o.traffic = traffic.serving(entries)
                time.sleep(self.settings.step_wait)
                self.smoke(url, [])
            except (smoke.SmokeFailure, grpc.RpcError) as error:
                self.roll_back(baseline, f"health check at {percent}% failed: {error}")
            except (ApiError, NotReady) as error:
                # Part of the traffic may have moved: put it back all the same.
                self.roll_back(baseline, f"the {percent}% step failed: {error}")
            o.step("traffic", f"{percent}% to {self.revision}, healthy")
        o.result = report.RELEASED

    def roll_back(self, baseline: list[dict], why: str) -> None:
        o = self.outcome
        try:
            restored = self.write(lambda _: traffic.restored(baseline, self.revision))
            self.waiter.reconciled(self.name, restored["metadata"]["generation"], settled=True)
        except (ApiError, NotReady) as error:
            shares = report.traffic_text(o.traffic)
            raise Failed(f"{why}; the rollback failed too ({error}): traffic {shares}") from None
        o.traffic = traffic.serving(baseline)
        o.result = report.ROLLED_BACK
        o.error = f"{why}; traffic back on {report.traffic_text(o.traffic)}"
        o.step("rollback", o.error)
        raise Failed(o.error)


def roll_back_service(api: Api, waiter: Waiter, outcome: Outcome) -> None:
    """`//deploy:rollback`: 100% to the revision tagged `previous`; without one (no release
    reached 100 %: versions deployed by hand), to the Ready revision created before the one
    serving most, which then gets the tag, so that a second rollback changes nothing."""
    for attempt in range(1, CONFLICT_ATTEMPTS + 1):
        live = api.get_service(outcome.name)
        if live is None:
            raise Failed(f"service {outcome.name} does not exist")
        entries = traffic.pinned(live.get("status", {}).get("traffic", []))
        try:
            if not any(e.get("tag") == traffic.PREVIOUS_TAG for e in entries):
                before = traffic.revision_before(
                    api.list_revisions(outcome.name), traffic.serving_most(entries)
                )
                entries.append({"revisionName": before, "percent": 0, "tag": traffic.PREVIOUS_TAG})
            entries, previous, current = traffic.rolled_back(entries)
        except ValueError as error:
            raise Failed(str(error)) from None
        outcome.revision = previous
        body = copy.deepcopy(live)
        body.pop("status", None)
        body["spec"]["traffic"] = entries
        try:
            written = api.replace_service(outcome.name, body, dry_run=False)
            break
        except Conflict:
            if attempt == CONFLICT_ATTEMPTS:
                raise
    waiter.reconciled(outcome.name, written["metadata"]["generation"], settled=True)
    outcome.traffic = {previous: 100}
    outcome.result = report.ROLLED_BACK if current != previous else report.NO_OP
    outcome.step("rollback", f"100% to {previous} (was {current or 'nothing'})")
