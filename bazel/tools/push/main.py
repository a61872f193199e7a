"""Pushes the image Bazel built to a registry: `bazel run //deploy:push [-- --repository R ...]`.

Blobs the registry lacks are uploaded, then the manifest by digest, and only then the tags, so
a push that fails part way leaves every tag where it was, and a rerun uploads only what is still
missing. Progress goes to stderr, one line per blob; stdout gets the pushed `REPOSITORY@sha256:`
reference (or, with --print_manifest, the Cloud Run manifest resolved for that repository).
Exit 0 on success, 1 when the registry or the network fails us, 2 on bad input.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import tempfile
import time
from pathlib import Path

import yaml

from bazel.tools.push.credentials import CredentialsError, find_credentials
from bazel.tools.push.layout import Image, LayoutError, read_layout
from bazel.tools.push.registry import RegistryError, Repository, RetryPolicy
from bazel.tools.cloud_run_manifest import container, dump
from bazel.tools.workspace_status import read_status

# From the distribution spec: repository path components and tags.
NAME = re.compile(
    r"[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*)*"
)
TAG = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._-]{0,127}")
STATUS_KEY = re.compile(r"\{(\w+)\}")
LOOPBACK = ("localhost", "127.", "[::1]")
MIB = 1024 * 1024


class UsageError(ValueError):
    """Bad input: exit 2 before anything is sent."""


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


def resolved_manifest(document: dict, repository: str, digest: str) -> str:
    """The service.yaml from the build, its image moved to `repository` (same digest)."""
    image = container(document)
    built_digest = image["image"].rpartition("@")[2]
    if built_digest != digest:
        raise UsageError(f"the manifest names image {built_digest}, but the image is {digest}")
    image["image"] = f"{repository}@{digest}"
    return dump(document)


def write_atomically(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile("w", dir=path.parent, delete=False, suffix=".tmp") as out:
        out.write(text)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(out.name, 0o666 & ~umask)  # as open() would have made it, not mkstemp's 0600
    os.replace(out.name, path)


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="push", description="Pushes an image built by Bazel to a registry."
    )
    parser.add_argument("--image", required=True, type=Path, help="OCI layout directory")
    parser.add_argument("--repository", help="host/name to push to")
    parser.add_argument("--tag", action="append", default=[], help="tag to set (repeatable)")
    parser.add_argument(
        "--stamped_tag",
        action="append",
        default=[],
        help="tag template such as {STABLE_RELEASE}, used when a --status_file is given",
    )
    parser.add_argument(
        "--status_file", action="append", default=[], help="Bazel workspace status (--stamp)"
    )
    parser.add_argument("--manifest", type=Path, help="service.yaml from cloud_run_manifest")
    output = parser.add_mutually_exclusive_group()
    output.add_argument(
        "--manifest_out",
        type=Path,
        default=Path("service.yaml"),
        help="where to write the resolved manifest (default: ./service.yaml)",
    )
    output.add_argument(
        "--print_manifest", action="store_true", help="print the resolved manifest to stdout"
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


def push(args: argparse.Namespace) -> int:
    built = yaml.safe_load(args.manifest.read_text(encoding="utf-8")) if args.manifest else None
    status_files = [str(Path(f).resolve()) for f in args.status_file]
    image = read_layout(args.image.resolve())
    # `bazel run` starts us in the runfiles; relative output paths mean the user's directory.
    os.chdir(os.environ.get("BUILD_WORKING_DIRECTORY", "."))

    repository = args.repository
    if not repository and built:
        repository = container(built)["image"].partition("@")[0]
    if not repository:
        raise UsageError("no --repository given and no manifest to take one from")
    host, name = split_repository(repository)
    stamped = expand_stamped_tags(args.stamped_tag, status_files) if status_files else []
    tags = list(dict.fromkeys(args.tag + stamped))
    for tag in tags:
        if not TAG.fullmatch(tag):
            raise UsageError(f"tag {tag!r} is not a valid OCI tag")
    if args.chunk_size_mib <= 0 or args.retries < 1:
        raise UsageError("--chunk_size_mib and --retries must be positive")
    manifest_text = resolved_manifest(built, repository, image.manifest_digest) if built else None

    credentials = find_credentials(host, tuple(args.google_registry))
    plain_http = args.plain_http or host.startswith(LOOPBACK)
    retry = RetryPolicy(attempts=args.retries)
    target = Repository(host, name, credentials, plain_http, retry, log)
    log(f"pushing {image.manifest_digest} to {repository}")
    log(f"credentials: {credentials.source if credentials else 'none (anonymous)'}")
    if args.stamped_tag and not args.status_file:
        log(f"stamped tags {args.stamped_tag} skipped: build with --stamp to set them")
    target.check()

    upload_missing_blobs(target, image, int(args.chunk_size_mib * MIB))
    digest = target.put_manifest(image.manifest_digest, image.manifest, image.media_type)
    if digest and digest != image.manifest_digest:
        raise RegistryError(f"registry {host} stored the manifest as {digest}, not as sent")
    log(f"manifest {image.manifest_digest}")
    for tag in tags:
        target.put_manifest(tag, image.manifest, image.media_type)
        log(f"tagged {repository}:{tag}")

    reference = f"{repository}@{image.manifest_digest}"
    if manifest_text is not None and args.print_manifest:
        log(reference)
        sys.stdout.write(manifest_text)
        return 0
    if manifest_text is not None:
        write_atomically(args.manifest_out, manifest_text)
        log(f"wrote {args.manifest_out.resolve()}")
    print(reference)
    return 0


def upload_missing_blobs(target: Repository, image: Image, chunk_size: int) -> None:
    uploaded = 0
    for blob in image.blobs:
        started = time.monotonic()
        if target.has_blob(blob.digest):
            log(f"skipped {blob.digest} {blob.size} bytes: already in the registry")
            continue
        parts = target.upload_blob(blob, chunk_size)
        uploaded += 1
        how = f"in {parts} chunks" if blob.size > chunk_size else "in one request"
        log(f"uploaded {blob.digest} {blob.size} bytes {how}, {time.monotonic() - started:.1f} s")
    log(f"blobs: {uploaded} uploaded, {len(image.blobs) - uploaded} already there")


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def main(argv: list[str]) -> int:
    args = parse_args(argv[1:])
    try:
        return push(args)
    except (UsageError, LayoutError) as error:
        print(f"push: {error}", file=sys.stderr)
        return 2
    except (RegistryError, CredentialsError) as error:
        print(f"push failed: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
