"""Pushing planned targets: blobs (uploaded, or mounted from a repository that got them earlier
in this run), the manifest by digest, the image's SBOM (an artifact that refers to it, see
referrers.py), then the tags, then the resolved manifest file; and what a push of services
prints, one summary line per service.

Kept apart from the planning (plan.py): everything here talks to a registry, and a failure
here is exit 1 for that image alone, never bad input.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from pathlib import Path

from bazel.tools import oci
from bazel.tools.push.credentials import Credentials, CredentialsError, find_credentials
from bazel.tools.push.deadline import Deadline, OutOfTime
from bazel.tools.push.layout import Image
from bazel.tools.push.origins import is_loopback
from bazel.tools.push.plan import Target
from bazel.tools.push.referrers import (
    ANY_MANIFEST,
    ReferrersError,
    referrers_tag,
    with_referrer,
)
from bazel.tools.push.registry import PushTimeout, RegistryError, Repository, RetryPolicy
from bazel.tools.push.registry_errors import printable
from bazel.tools.push.transport import MIB, Transport


class TagError(RegistryError):
    """A tag was refused after the image was pushed; the message says which tags moved."""


@dataclasses.dataclass
class Outcome:
    """What became of one service, for its line of the summary that ends a push of services
    (the lines a pipeline reads to know which services to deploy)."""

    target: Target
    error: str | None = None  # why it failed; None: pushed, tagged, manifest written

    def summary(self) -> str:
        """`SERVICE: pushed REPO@DIGEST tags T... [sbom DIGEST]` or `SERVICE: FAILED: why`."""
        target = self.target
        if self.error is not None:
            return f"{target.label}: FAILED: {self.error}"
        tags = " ".join(target.tags) if target.tags else "none"
        line = f"{target.label}: pushed {target.repository}@{target.image.manifest_digest}"
        sbom = f" sbom {target.sbom.manifest_digest}" if target.sbom else ""
        return f"{line} tags {tags}{sbom}"


def write_atomically(path: Path, text: str) -> None:
    """Writes `path` whole or not at all: a temporary file beside it, then a rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile("w", dir=path.parent, delete=False, suffix=".tmp") as out:
        out.write(text)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(out.name, 0o666 & ~umask)  # as open() would have made it, not mkstemp's 0600
    os.replace(out.name, path)


class Pusher:
    """Pushes targets one by one, remembering which repository of each registry got which blob
    in this run, so the next repository can mount it instead of uploading it again; all of
    them within one deadline (--timeout), which starts here."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.chunk_size = int(args.chunk_size_mib * MIB)
        self.retry = RetryPolicy(attempts=args.retries)
        self.transport = Transport(Deadline(args.timeout), args.request_timeout)
        self.credentials: dict[str, Credentials | None] = {}
        self.holders: dict[str, dict[str, str]] = {}  # host -> blob digest -> repository name

    def push(self, target: Target, log: Callable[[str], None]) -> None:
        """Blobs, manifest by digest, the SBOM, tags, then the manifest file; raises on
        failure."""
        host = target.host
        if host not in self.credentials:
            # A credential helper or Google's token endpoint may hang too.
            try:
                with self.transport.deadline.within():
                    found = find_credentials(host, tuple(self.args.google_registry))
            except OutOfTime as error:
                raise PushTimeout(f"finding credentials for {host}: {error}") from None
            self.credentials[host] = found
        credentials = self.credentials[host]
        plain_http = self.args.plain_http or is_loopback(host)
        repository = Repository(
            host, target.name, credentials, self.transport, plain_http, self.retry, log
        )
        image = target.image
        log(f"pushing {image.manifest_digest} to {target.repository}")
        log(f"credentials: {credentials.source if credentials else 'none (anonymous)'}")
        repository.check()

        self.send_missing_blobs(repository, image, log)
        self.put_by_digest(repository, image)
        log(f"manifest {image.manifest_digest}")
        if target.sbom is not None:
            self.attach(repository, target.sbom, image, log)
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

    @staticmethod
    def put_by_digest(repository: Repository, image: Image) -> str:
        """PUTs the manifest under its digest, checks the registry stored what was sent, and
        returns the subject it says it indexed the manifest under (see attach)."""
        stored = repository.put_manifest(image.manifest_digest, image.manifest, image.media_type)
        if stored.digest and stored.digest != image.manifest_digest:
            raise RegistryError(
                f"registry {repository.host} stored the manifest as {printable(stored.digest)}, "
                "not as sent"
            )
        return stored.subject

    def attach(
        self, repository: Repository, artifact: Image, image: Image, log: Callable[[str], None]
    ) -> None:
        """Pushes `artifact` (an SBOM whose subject is `image`) and makes it discoverable: a
        registry with the referrers API says so (OCI-Subject) and indexes it itself; for one
        without, the referrers index under the tag schema (`sha256-<hex>`) gets it listed,
        the referrers already there kept."""
        log(f"sbom {artifact.manifest_digest}: the SBOM artifact of {image.manifest_digest}")
        self.send_missing_blobs(repository, artifact, lambda message: log(f"sbom {message}"))
        if self.put_by_digest(repository, artifact) == image.manifest_digest:
            log(f"sbom {artifact.manifest_digest} attached (the registry indexes referrers)")
            return
        tag = referrers_tag(image.manifest_digest)
        problem = f"the SBOM was pushed, but the referrers tag {tag} cannot list it"
        try:
            current = repository.get_manifest(tag, ANY_MANIFEST)
            index = with_referrer(current, artifact)
            if index is not None:
                stored = repository.put_manifest(tag, index, oci.INDEX)
                if stored.digest and stored.digest != oci.sha256_digest(index):
                    raise RegistryError(
                        f"registry stored it as {printable(stored.digest)}, not as sent"
                    )
        except ReferrersError as error:
            raise RegistryError(f"{problem}: {error}; left as it is") from None
        except RegistryError as error:
            raise RegistryError(f"{problem}: {error}") from None
        listed = "listed" if index is not None else "already listed"
        log(f"sbom {artifact.manifest_digest} attached, {listed} in the referrers index :{tag}")

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
                except PushTimeout:
                    raise
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
