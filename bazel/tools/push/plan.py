"""Planning a push: the spec or the command line read into targets (image, repository, tags,
resolved manifest), everything checked before anything is sent.

Kept apart from the pushing so that bad input (exit 2) is found by code that cannot reach a
registry: a UsageError or LayoutError from here means nothing was sent.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import re
from pathlib import Path

import yaml

from bazel.tools.cloud_run_manifest import container, dump
from bazel.tools.push.layout import Image, read_layout
from bazel.tools.push.referrers import SbomError, sbom_artifact
from bazel.tools.workspace_status import read_status

# From the distribution spec: repository path components and tags.
NAME = re.compile(
    r"[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*)*"
)
TAG = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._-]{0,127}")
STATUS_KEY = re.compile(r"\{(\w+)\}")
MOVING_TAGS = ("latest",)  # tags every push moves: set after the ones that name one build


class UsageError(ValueError):
    """Bad input: exit 2 before anything is sent."""


@dataclasses.dataclass
class Target:
    """One image to push where, and what to write once it is."""

    service: str | None  # the spec's service; None for a plain image (oci_push)
    image: Image
    repository: str
    host: str
    name: str
    tags: list[str]
    manifest_text: str | None = None
    manifest_out: Path | None = None
    run_name: str | None = None  # the Cloud Run service name its manifest gives
    sbom: Image | None = None  # the SBOM artifact attached to the image (referrers.py)

    @property
    def label(self) -> str:
        """How the output names it: `ping`, or `ping (ping-staging)` once renamed."""
        if self.run_name and self.run_name != self.service:
            return f"{self.service} ({self.run_name})"
        return str(self.service)


def split_repository(repository: str) -> tuple[str, str]:
    """`host[:port]/name` -> (host, name), checked as docker would."""
    host, _, name = repository.partition("/")
    if not name or not ("." in host or ":" in host or host == "localhost"):
        raise UsageError(
            f"repository {repository!r} must start with the registry host, "
            "e.g. europe-west1-docker.pkg.dev/PROJECT/REPO/NAME"
        )
    if not NAME.fullmatch(name):
        raise UsageError(f"repository name {name!r} is not a valid OCI repository name")
    return host, name


def expand_stamped_tags(templates: list[str], status_files: list[str]) -> list[str]:
    """`{STABLE_RELEASE}`-style templates filled from Bazel's workspace status (--stamp)."""
    values = read_status(status_files)
    tags = []
    for template in templates:
        for key in STATUS_KEY.findall(template):
            if key not in values:
                raise UsageError(f"stamped tag {template!r}: the workspace status has no {key}")
        tags.append(STATUS_KEY.sub(lambda match: values[match.group(1)], template))
    return tags


def checked_tags(stamped: list[str], extra: list[str], rule: list[str]) -> list[str]:
    """The tags to set, in the order they are set: most specific first (stamped, then --tag,
    then the rule's), moving tags such as `latest` last, so that a refused tag leaves `latest`
    where it was. Each once; each checked, so that a bad one is refused before anything is sent.
    """
    tags = list(dict.fromkeys(stamped + extra + rule))
    tags.sort(key=lambda tag: tag in MOVING_TAGS)  # stable: only moves `latest` to the end
    for tag in tags:
        if not TAG.fullmatch(tag):
            raise UsageError(f"tag {tag!r} is not a valid OCI tag")
    return tags


def resolved_manifest(document: dict, repository: str, digest: str) -> str:
    """The manifest from the build, its image moved to `repository` (same digest)."""
    image = container(document)
    built_digest = image["image"].rpartition("@")[2]
    if built_digest != digest:
        raise UsageError(f"the manifest names image {built_digest}, but the image is {digest}")
    image["image"] = f"{repository}@{digest}"
    return dump(document)


def plan(args: argparse.Namespace) -> tuple[list[Target], list[str]]:
    """The images to push, read and checked, and notes worth saying once planning succeeded;
    raises UsageError or LayoutError on bad input."""
    if args.chunk_size_mib <= 0 or args.retries < 1:
        raise UsageError("--chunk_size_mib and --retries must be positive")
    if not (0 < args.timeout < math.inf and 0 < args.request_timeout < math.inf):
        raise UsageError("--timeout and --request_timeout must be positive numbers of seconds")
    status_files = [str(Path(f).resolve()) for f in args.status_file]
    if args.spec:
        targets, notes = plan_services(args, status_files)
    else:
        target, notes = plan_image(args, status_files)
        targets = [target]
    # `bazel run` starts us in the runfiles; relative output paths mean the user's directory.
    os.chdir(os.environ.get("BUILD_WORKING_DIRECTORY", "."))
    if args.spec:
        directory = args.manifest_dir.resolve()
        try:
            directory.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise UsageError(f"--manifest_dir {directory}: {error.strerror}") from None
        if not os.access(directory, os.W_OK | os.X_OK):
            raise UsageError(f"--manifest_dir {directory} is not writable")
        for target in targets:
            target.manifest_out = directory / f"{target.service}.yaml"
    return targets, notes


def skipped_stamps_note(templates: list[str]) -> list[str]:
    """Says that stamped tags were asked for but the build was not stamped."""
    if not templates:
        return []
    return [f"stamped tags {sorted(set(templates))} skipped: build with --stamp to set them"]


def plan_image(args: argparse.Namespace, status_files: list[str]) -> tuple[Target, list[str]]:
    """oci_push: one image to the one repository --repository names, and the notes."""
    if not args.repository:
        raise UsageError("no --repository given: where should the image go?")
    host, name = split_repository(args.repository)
    stamped = expand_stamped_tags(args.stamped_tag, status_files) if status_files else []
    notes = [] if status_files else skipped_stamps_note(args.stamped_tag)
    image = read_layout(args.image.resolve())
    tags = checked_tags(stamped, args.tag, [])
    return Target(None, image, args.repository, host, name, tags), notes


def plan_services(
    args: argparse.Namespace, cli_status_files: list[str]
) -> tuple[list[Target], list[str]]:
    """cloud_run_push: each service of the spec to its repository (see the module's doc), with
    its manifest resolved for it, and the notes. Two services bound for one repository (an
    environment renamed one onto the other) are refused: each would move the other's tags."""
    try:
        spec = json.loads(args.spec.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise UsageError(f"cannot read the push spec {args.spec}: {error}") from None
    prefix = (args.repository or spec.get("repository") or "").rstrip("/")
    status_files = [str(Path(f).resolve()) for f in spec.get("status_files", [])]
    status_files += cli_status_files
    targets: list[Target] = []
    bound_for: dict[str, str] = {}  # repository -> the service going there
    skipped_stamps = []
    for service in spec["services"]:
        name = service["service"]
        image = read_layout(Path(service["image"]).resolve())
        try:
            built = yaml.safe_load(Path(service["manifest"]).read_text(encoding="utf-8"))
        except (OSError, yaml.YAMLError) as error:
            raise UsageError(f"cannot read the manifest of {name}: {error}") from None
        run_name = built.get("metadata", {}).get("name") if isinstance(built, dict) else None
        if not isinstance(run_name, str) or not run_name:
            raise UsageError(f"the manifest of {name} names no service (metadata.name)")
        if prefix:
            repository = f"{prefix}/{run_name}"
        else:
            repository = container(built)["image"].partition("@")[0]
        host, path = split_repository(repository)
        if repository in bound_for:
            raise UsageError(
                f"services {bound_for[repository]} and {name} would both go to {repository}"
            )
        bound_for[repository] = name
        templates = service["stamped_tags"] + args.stamped_tag
        if not status_files:
            skipped_stamps += templates
        stamped = expand_stamped_tags(templates, status_files) if status_files else []
        tags = checked_tags(stamped, args.tag, service["tags"])
        text = resolved_manifest(built, repository, image.manifest_digest)
        sbom = None if args.no_sbom else planned_sbom(name, service.get("sbom"), image)
        targets.append(
            Target(
                name,
                image,
                repository,
                host,
                path,
                tags,
                manifest_text=text,
                run_name=run_name,
                sbom=sbom,
            )
        )
    return targets, skipped_stamps_note(skipped_stamps)


def planned_sbom(service: str, path: str | None, image: Image) -> Image | None:
    """The SBOM artifact of a service of the spec, None when it has no SBOM; checked here, so
    that an SBOM that is missing or describes another image is bad input, found before
    anything is sent."""
    if not path:
        return None
    try:
        return sbom_artifact(Path(path).resolve(), image)
    except SbomError as error:
        raise UsageError(f"service {service}: {error}") from None
