"""The release spec that the cloud_run_release rule writes: per environment, each service's
push entry (as cloud_run_push's spec has it, with that environment's manifest) and where it
runs (project, region, Cloud Run name), all read before anything is sent."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import yaml


class UsageError(ValueError):
    """Bad input: one line, exit 2, nothing sent."""


@dataclasses.dataclass
class Service:
    """One service in the chosen environment."""

    service: str  # the kit's name (environment files' key, push spec's name)
    name: str  # its Cloud Run name in this environment
    project: str
    region: str
    manifest: dict  # as built, image by digest in the repository the build names
    push_entry: dict  # its entry of a cloud_run_push spec, paths absolute
    smoke_checks: list[dict]  # as cloud_run_service validated them (checks.py reads them)


@dataclasses.dataclass
class Spec:
    push_tool: Path
    repository: str
    status_files: list[str]
    services: list[Service]


def read_spec(path: Path, environment: str, names: list[str]) -> Spec:
    """The services of `environment`, those `names` lists (kit or Cloud Run names) if any."""
    root = Path.cwd()  # the runfiles root: the launcher starts us there
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise UsageError(f"cannot read the release spec {path}: {error}") from None
    environments = data["environments"]
    if environment not in environments:
        have = ", ".join(sorted(environments)) or "none"
        raise UsageError(f"--environment={environment!r}: no such environment (have: {have})")
    services = []
    for entry in environments[environment]:
        target = json.loads((root / entry["target"]).read_text(encoding="utf-8"))
        manifest = yaml.safe_load((root / entry["manifest"]).read_text(encoding="utf-8"))
        push_entry = {k: v for k, v in entry.items() if k not in ("target", "smoke_checks")}
        for key in ("image", "manifest", "sbom"):
            if push_entry.get(key):
                push_entry[key] = str(root / push_entry[key])
        services.append(
            Service(
                entry["service"],
                target["service"],
                target["project"],
                target["region"],
                manifest,
                push_entry,
                entry["smoke_checks"],
            )
        )
    if names:
        known = {s.service for s in services} | {s.name for s in services}
        unknown = sorted(set(names) - known)
        if unknown:
            raise UsageError(
                f"--service {', '.join(unknown)}: not a service of {environment} "
                f"(have: {', '.join(sorted(s.service for s in services))})"
            )
        services = [s for s in services if s.service in names or s.name in names]
    for service in services:
        if not service.project:
            raise UsageError(f"service {service.service} has no project in {environment}")
        if not service.region:
            raise UsageError(f"service {service.service} has no region in {environment}")
    return Spec(
        root / data["push_tool"],
        data.get("repository", ""),
        [str(root / f) for f in data.get("status_files", [])],
        services,
    )
