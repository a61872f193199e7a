"""Traffic lists of a release, computed from the live service alone: pure functions, so each
rule (pin what serves, add the candidate at 0 %, shift in steps, put it all back) is tested
without a server.

Every list starts from the *status* traffic of the live service, not its spec: the status names
the revision behind a `latestRevision: true` entry. A release that kept such an entry as it is
would hand the traffic to the new revision the moment it became Ready, before any smoke test.
"""

from __future__ import annotations

import json

from bazel.tools.oci import canonical_json, sha256_digest

CANDIDATE_TAG = "candidate"
PREVIOUS_TAG = "previous"  # set at 100 %: the revision that served before, for rollback
HASH_HEX_DIGITS = 10


def revision_name(service: str, template: dict) -> str:
    """`SERVICE-<10 hex>` of the template without its name: the same manifest gives the same
    name on every run, so a release can tell that the revision it would make already exists."""
    unnamed = json.loads(json.dumps(template))
    unnamed.get("metadata", {}).pop("name", None)
    digest = sha256_digest(canonical_json(unnamed)).removeprefix("sha256:")
    return f"{service}-{digest[:HASH_HEX_DIGITS]}"


def pinned(status_traffic: list[dict]) -> list[dict]:
    """The live traffic, each entry naming its revision (never `latestRevision`)."""
    entries = []
    for entry in status_traffic:
        kept = {"revisionName": entry["revisionName"], "percent": entry.get("percent", 0)}
        if entry.get("tag"):
            kept["tag"] = entry["tag"]
        entries.append(kept)
    return entries


def serving(entries: list[dict]) -> dict[str, int]:
    """Revision -> percent, for those with traffic."""
    shares: dict[str, int] = {}
    for entry in entries:
        if entry.get("percent", 0) > 0:
            shares[entry["revisionName"]] = shares.get(entry["revisionName"], 0) + entry["percent"]
    return shares


def _without_tag(entries: list[dict], tag: str) -> list[dict]:
    """Entries with `tag` moved off them (a tag names one entry); a 0 % entry that only held
    the tag goes."""
    result = []
    for entry in entries:
        if entry.get("tag") != tag:
            result.append(entry)
        elif entry.get("percent", 0) > 0:
            result.append({k: v for k, v in entry.items() if k != "tag"})
    return result


def with_candidate(baseline: list[dict], candidate: str) -> list[dict]:
    """The baseline as it is, plus the candidate at 0 % under its tag."""
    kept = _without_tag(baseline, CANDIDATE_TAG)
    return [*kept, {"revisionName": candidate, "percent": 0, "tag": CANDIDATE_TAG}]


def first_traffic(candidate: str) -> list[dict]:
    """A service that does not exist yet: Knative needs 100 % somewhere, and there is nothing
    else to give it to."""
    return [{"revisionName": candidate, "percent": 100, "tag": CANDIDATE_TAG}]


def step(baseline: list[dict], candidate: str, percent: int) -> list[dict]:
    """`percent` to the candidate, the rest shared by the baseline's serving revisions in their
    proportions (the remainder of the rounding to the largest); tagged 0 % entries kept. At
    100 the revision that served most gets the `previous` tag, which rollback reads."""
    shares = serving([e for e in baseline if e["revisionName"] != candidate])
    rest = 100 - percent
    total = sum(shares.values())
    split = {name: rest * share // total for name, share in shares.items()} if total else {}
    if split:
        largest = max(shares, key=lambda name: (shares[name], name))
        split[largest] += rest - sum(split.values())
    entries = [{"revisionName": candidate, "percent": percent, "tag": CANDIDATE_TAG}]
    tags = {CANDIDATE_TAG}
    if percent == 100 and shares:
        most = max(shares, key=lambda name: (shares[name], name))
        entries.append({"revisionName": most, "percent": 0, "tag": PREVIOUS_TAG})
        tags.add(PREVIOUS_TAG)
    for name in sorted(split):
        if split[name] > 0:
            entries.append({"revisionName": name, "percent": split[name]})
    for entry in baseline:
        if entry.get("tag") and entry["tag"] not in tags and entry["revisionName"] != candidate:
            entries.append(
                {"revisionName": entry["revisionName"], "percent": 0, "tag": entry["tag"]}
            )
    return entries


def restored(baseline: list[dict], candidate: str) -> list[dict]:
    """Rolling a failed release back: the baseline's traffic exactly, the candidate left at 0 %
    under its tag for a look at what failed."""
    return with_candidate(baseline, candidate)


def serving_most(entries: list[dict]) -> str:
    """The revision with the largest share (ties: the last name), "" when none serves."""
    shares = serving(entries)
    return max(shares, key=lambda name: (shares[name], name)) if shares else ""


def revision_before(revisions: list[dict], current: str) -> str:
    """The newest Ready revision created before `current`, from the service's revisions (v1
    Revision resources): what served before it, when no `previous` tag says so. Revisions made
    after it (a release that failed and left its candidate at 0 %) never served 100 %. Order:
    the `configurationGeneration` label Cloud Run numbers revisions with, then the creation
    time. ValueError without one."""

    def created(revision: dict) -> tuple[int, str]:
        metadata = revision["metadata"]
        number = metadata.get("labels", {}).get("serving.knative.dev/configurationGeneration")
        return int(number or 0), metadata.get("creationTimestamp", "")

    by_name = {r["metadata"]["name"]: r for r in revisions}
    if current not in by_name:
        raise ValueError(f"the serving revision {current!r} is not among the service's revisions")
    older = [
        r
        for r in revisions
        if created(r) < created(by_name[current])
        and any(
            c.get("type") == "Ready" and c.get("status") == "True"
            for c in r.get("status", {}).get("conditions", [])
        )
    ]
    if not older:
        raise ValueError(f"no Ready revision older than {current} to roll back to")
    return max(older, key=created)["metadata"]["name"]


def rolled_back(entries: list[dict]) -> tuple[list[dict], str, str]:
    """Rollback: 100 % to the revision tagged `previous`; every tag kept at 0 %. Returns the
    traffic, the previous revision and the one that served most. ValueError without one."""
    previous = [e["revisionName"] for e in entries if e.get("tag") == PREVIOUS_TAG]
    if not previous:
        raise ValueError(
            f"no revision is tagged {PREVIOUS_TAG!r}: a release that reached 100 % sets it"
        )
    current = serving_most(entries)
    # The tag stays: a second rollback finds the same revision, and changes nothing.
    result = [{"revisionName": previous[0], "percent": 100, "tag": PREVIOUS_TAG}]
    for entry in entries:
        if entry.get("tag") and entry["tag"] != PREVIOUS_TAG:
            result.append(
                {"revisionName": entry["revisionName"], "percent": 0, "tag": entry["tag"]}
            )
    return result, previous[0], current


def parse_steps(text: str) -> list[int]:
    """`10,50,100` -> [10, 50, 100]: rising, each 1..100, ending at 100. ValueError if not."""
    try:
        steps = [int(part) for part in text.split(",")]
    except ValueError:
        raise ValueError(f"--traffic_steps {text!r}: comma-separated integers") from None
    if steps[-1] != 100 or any(not 0 < s <= 100 for s in steps) or steps != sorted(set(steps)):
        raise ValueError(f"--traffic_steps {text!r}: rising percents from 1, ending at 100")
    return steps
