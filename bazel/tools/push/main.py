"""Pushes images Bazel built to a registry: `bazel run //deploy:push [-- --repository PREFIX]`.

Two modes, one per rule:
- `--spec FILE` (cloud_run_push): the Cloud Run services the spec lists, one after the other.
  Each goes to `PREFIX/NAME` with `--repository PREFIX`, NAME being the Cloud Run service name
  its manifest (built for the chosen environment) gives, so an environment that renames a
  service (`ping-staging`) never moves the tags of another environment's; else to the
  repository its manifest names. Once pushed, its manifest, resolved for that repository, is
  written to `--manifest_dir` (default: where `bazel run` was started) as `SERVICE.yaml` (the
  spec's name). A service that fails, for any reason, does not stop the others: nothing of it is
  tagged and its manifest is not written. Stdout ends with one line per service:
  `ping: pushed REPO@sha256:... tags latest`, `ping (ping-staging): pushed ...` when the
  environment renamed it, or `ping: FAILED: reason` (`FAILED: internal error: ...` with a
  traceback on stderr for an error nothing here foresaw).
- `--image DIR --repository HOST/NAME` (oci_push): one image, stdout `REPOSITORY@sha256:...`.

For each image, blobs the registry lacks are uploaded (or mounted from another repository of
the same registry that got them earlier in this run), then the manifest by digest, and only
then the tags, so a push that fails part way leaves every tag where it was, and a rerun
uploads only what is still missing. Tags go most specific first: stamped tags (release,
commit), then `--tag`s, then the rule's, `latest` last; a tag the registry refuses stops the
tagging, and the failure says which tags moved and which did not. Progress goes to stderr, one
line per blob, prefixed with the service in --spec mode.

Exit 0 when everything was pushed, 1 when the registry or the network failed any image, 2 on
bad input (found before anything is sent).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import re
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from pathlib import Path

import yaml

from bazel.tools.cloud_run_manifest import container, dump
from bazel.tools.push.credentials import Credentials, CredentialsError, find_credentials
from bazel.tools.push.layout import Image, LayoutError, read_layout
from bazel.tools.push.registry import RegistryError, Repository, RetryPolicy
from bazel.tools.workspace_status import read_status

# From the distribution spec: repository path components and tags.
NAME = re.compile(
    r"[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*)*"
)
TAG = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._-]{0,127}")
STATUS_KEY = re.compile(r"\{(\w+)\}")
LOOPBACK = ("localhost", "127.", "[::1]")
MIB = 1024 * 1024
MOVING_TAGS = ("latest",)  # tags every push moves: set after the ones that name one build


class UsageError(ValueError):
    """Bad input: exit 2 before anything is sent."""


class TagError(RegistryError):
    """A tag was refused after the image was pushed; the message says which tags moved."""


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

    @property
    def label(self) -> str:
        """How the output names it: `ping`, or `ping (ping-staging)` once renamed."""
        if self.run_name and self.run_name != self.service:
            return f"{self.service} ({self.run_name})"
        return str(self.service)


@dataclasses.dataclass
class Outcome:
    """What became of one service, for its line of the summary that ends a push of services
    (the lines a pipeline reads to know which services to deploy)."""

    target: Target
    error: str | None = None  # why it failed; None: pushed, tagged, manifest written

    def summary(self) -> str:
        """`SERVICE: pushed REPO@DIGEST tags T...` or `SERVICE: FAILED: why`."""
        target = self.target
        if self.error is not None:
            return f"{target.label}: FAILED: {self.error}"
        tags = " ".join(target.tags) if target.tags else "none"
        line = f"{target.label}: pushed {target.repository}@{target.image.manifest_digest}"
        return f"{line} tags {tags}"


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


def write_atomically(path: Path, text: str) -> None:
    """Writes `path` whole or not at all: a temporary file beside it, then a rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile("w", dir=path.parent, delete=False, suffix=".tmp") as out:
        out.write(text)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(out.name, 0o666 & ~umask)  # as open() would have made it, not mkstemp's 0600
    os.replace(out.name, path)


def parse_args(argv: list[str]) -> argparse.Namespace:
    """The command line: the launcher's arguments (spec or image), then the user's."""
    parser = argparse.ArgumentParser(
        prog="push", description="Pushes images built by Bazel to a registry."
    )
    what = parser.add_mutually_exclusive_group(required=True)
    what.add_argument(
        "--spec", type=Path, help="Cloud Run services to push (JSON written by cloud_run_push)"
    )
    what.add_argument("--image", type=Path, help="one image: its OCI layout directory")
    parser.add_argument(
        "--repository",
        help="with --spec: a repository prefix, host/path; each service goes to "
        "PREFIX/NAME, NAME the Cloud Run service name its manifest gives (default: the "
        "repository its manifest names). "
        "With --image: the whole repository, host/path/name",
    )
    parser.add_argument(
        "--tag", action="append", default=[], help="another tag to set (repeatable)"
    )
    parser.add_argument(
        "--stamped_tag",
        action="append",
        default=[],
        help="tag template such as {STABLE_RELEASE}, used when a --status_file is given",
    )
    parser.add_argument(
        "--status_file", action="append", default=[], help="Bazel workspace status (--stamp)"
    )
    parser.add_argument(
        "--manifest_dir",
        type=Path,
        default=Path("."),
        help="with --spec: where SERVICE.yaml files go (default: the directory bazel run "
        "was started from)",
    )
    parser.add_argument(
        "--no_mount",
        action="store_true",
        help="upload every missing blob, never mount one from another repository",
    )
    parser.add_argument(
        "--chunk_size_mib",
        type=float,
        default=16,
        help="blobs larger than this go in chunks of this size (default: 16)",
    )
    parser.add_argument("--retries", type=int, default=5, help="attempts per request")
    parser.add_argument(
        "--plain_http",
        action="store_true",
        help="HTTP instead of HTTPS (always so for loopback registries)",
    )
    parser.add_argument(
        "--google_registry",
        action="append",
        default=[],
        help="another host to treat as Google's (Application Default Credentials)",
    )
    return parser.parse_args(argv)


# --- planning: everything checked before anything is sent ---------------------------------


def plan(args: argparse.Namespace) -> tuple[list[Target], list[str]]:
    """The images to push, read and checked, and notes worth saying once planning succeeded;
    raises UsageError or LayoutError on bad input."""
    if args.chunk_size_mib <= 0 or args.retries < 1:
        raise UsageError("--chunk_size_mib and --retries must be positive")
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
        targets.append(
            Target(name, image, repository, host, path, tags, manifest_text=text, run_name=run_name)
        )
    return targets, skipped_stamps_note(skipped_stamps)


# --- pushing --------------------------------------------------------------------------------


class Pusher:
    """Pushes targets one by one, remembering which repository of each registry got which blob
    in this run, so the next repository can mount it instead of uploading it again."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.chunk_size = int(args.chunk_size_mib * MIB)
        self.retry = RetryPolicy(attempts=args.retries)
        self.credentials: dict[str, Credentials | None] = {}
        self.holders: dict[str, dict[str, str]] = {}  # host -> blob digest -> repository name

    def push(self, target: Target, log: Callable[[str], None]) -> None:
        """Blobs, manifest by digest, tags, then the manifest file; raises on failure."""
        host = target.host
        if host not in self.credentials:
            self.credentials[host] = find_credentials(host, tuple(self.args.google_registry))
        credentials = self.credentials[host]
        plain_http = self.args.plain_http or host.startswith(LOOPBACK)
        repository = Repository(host, target.name, credentials, plain_http, self.retry, log)
        image = target.image
        log(f"pushing {image.manifest_digest} to {target.repository}")
        log(f"credentials: {credentials.source if credentials else 'none (anonymous)'}")
        repository.check()

        self.send_missing_blobs(repository, image, log)
        digest = repository.put_manifest(image.manifest_digest, image.manifest, image.media_type)
        if digest and digest != image.manifest_digest:
            raise RegistryError(f"registry {host} stored the manifest as {digest}, not as sent")
        log(f"manifest {image.manifest_digest}")
        for done, tag in enumerate(target.tags):
            try:
                repository.put_manifest(tag, image.manifest, image.media_type)
            except RegistryError as error:
                moved = " ".join(target.tags[:done]) or "none"
                raise TagError(
                    f"tag {tag} refused: {error}; tags moved: {moved}; "
                    f"tags not moved: {' '.join(target.tags[done:])}"
                ) from None
            log(f"tagged {target.repository}:{tag}")
        if target.manifest_text is not None and target.manifest_out is not None:
            try:
                write_atomically(target.manifest_out, target.manifest_text)
            except OSError as error:
                raise RegistryError(
                    f"pushed and tagged, but writing {target.manifest_out} failed: {error}"
                ) from None
            log(f"wrote {target.manifest_out}")

    def send_missing_blobs(
        self, repository: Repository, image: Image, log: Callable[[str], None]
    ) -> None:
        """Each blob the repository lacks: mounted from a repository that got it earlier in
        this run (same registry), else uploaded."""
        holders = self.holders.setdefault(repository.host, {})
        counts = {"uploaded": 0, "mounted": 0, "skipped": 0}
        for blob in image.blobs:
            started = time.monotonic()
            if repository.has_blob(blob.digest):
                log(f"skipped {blob.digest} {blob.size} bytes: already in the registry")
                counts["skipped"] += 1
                holders.setdefault(blob.digest, repository.name)
                continue
            source = holders.get(blob.digest)
            session = None
            if source and source != repository.name and not self.args.no_mount:
                try:
                    session = repository.mount_blob(blob.digest, source)
                except RegistryError as error:
                    log(f"mounting {blob.digest} from {source} failed ({error}); uploading it")
                    session = None
                else:
                    if session is None:
                        log(f"mounted {blob.digest} {blob.size} bytes from {source}")
                        counts["mounted"] += 1
                        continue
                    log(f"registry declined to mount {blob.digest} from {source}; uploading it")
            parts = repository.upload_blob(blob, self.chunk_size, session)
            counts["uploaded"] += 1
            holders[blob.digest] = repository.name
            how = f"in {parts} chunks" if blob.size > self.chunk_size else "in one request"
            seconds = time.monotonic() - started
            log(f"uploaded {blob.digest} {blob.size} bytes {how}, {seconds:.1f} s")
        log(
            f"blobs: {counts['uploaded']} uploaded, {counts['mounted']} mounted, "
            f"{counts['skipped']} already there"
        )


def push_services(args: argparse.Namespace, targets: list[Target]) -> int:
    """Pushes every service whatever happens to the others, then prints the summary; the exit
    status: 0 when all were pushed, 1 when any failed. A failure nothing foresaw (a bug, a
    file gone) fails that service alone, with its traceback on stderr."""
    pusher = Pusher(args)
    outcomes = []
    for target in targets:
        prefix = f"{target.label}: "
        try:
            pusher.push(target, lambda message, prefix=prefix: log(prefix + message))
            outcomes.append(Outcome(target))
        except (RegistryError, CredentialsError) as error:
            log(f"{prefix}push failed: {error}")
            outcomes.append(Outcome(target, str(error)))
        except Exception as error:
            traceback.print_exc(file=sys.stderr)
            log(f"{prefix}push failed: {internal_error(error)}")
            outcomes.append(Outcome(target, internal_error(error)))
    for outcome in outcomes:
        print(outcome.summary(), flush=True)
    failed = [o.target.label for o in outcomes if o.error is not None]
    if failed:
        log(f"push failed for {len(failed)} of {len(outcomes)} services: {', '.join(failed)}")
        return 1
    return 0


def push_image(args: argparse.Namespace, target: Target) -> int:
    """oci_push: the image, then `REPOSITORY@DIGEST` on stdout; exit status 0 or 1, the reason
    of a failure as the last line of stderr."""
    try:
        Pusher(args).push(target, log)
    except (RegistryError, CredentialsError) as error:
        log(f"push failed: {error}")
        return 1
    except Exception as error:
        traceback.print_exc(file=sys.stderr)
        log(f"push failed: {internal_error(error)}")
        return 1
    print(f"{target.repository}@{target.image.manifest_digest}")
    return 0


def internal_error(error: Exception) -> str:
    """One line for an exception nothing here expected."""
    lines = str(error).splitlines()
    return f"internal error: {type(error).__name__}: {lines[0] if lines else ''}".rstrip()


def log(message: str) -> None:
    """Progress and failures: stderr, so stdout holds only the result."""
    print(message, file=sys.stderr, flush=True)


def main(argv: list[str]) -> int:
    """Plans (exit 2 on bad input, before anything is sent), then pushes."""
    args = parse_args(argv[1:])
    try:
        targets, notes = plan(args)
    except (UsageError, LayoutError) as error:
        print(f"push: {error}", file=sys.stderr)
        return 2
    for note in notes:
        log(note)
    if args.spec:
        return push_services(args, targets)
    return push_image(args, targets[0])


if __name__ == "__main__":
    sys.exit(main(sys.argv))
