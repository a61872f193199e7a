"""Pulls an image by digest from a registry into an OCI image layout, as Cloud Run pulls a
revision's image. The layout is what oci_layout.Layout reads and unpacks.

The registry is whichever one the Service names, so nothing it sends is trusted: the manifest
must hash to the digest the Service names, every blob to its descriptor's digest and size,
before anything is kept. Each blob goes to a temp file renamed once its digest matches, the
whole layout to a temp directory renamed once every blob is in: a pull that fails leaves
nothing behind. What a pull may cost (time, sizes, redirects) is registry_http.Limits.

Plain HTTP only to loopback registries (the local registry a release pushed to); HTTPS
elsewhere. Anonymous pulls only: the local Cloud Run holds no registry credentials.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import tempfile
from collections.abc import Iterable
from pathlib import Path

from bazel.tools import oci
from tools.cloud_run.registry_http import (
    DEFAULT_LIMITS,
    Deadline,
    Limits,
    PullError,
    get,
    is_loopback,
)

__all__ = ["DEFAULT_LIMITS", "Limits", "PullError", "parse_reference", "pull"]

# An image reference pinned by digest, as the kit's manifests and `gcloud run` require.
_REFERENCE = re.compile(
    r"^(?P<registry>[a-z0-9.-]+(?::[0-9]+)?)/(?P<repository>[a-z0-9._/-]+)@(?P<digest>sha256:[0-9a-f]{64})$"
)
_MANIFEST_TYPES = (oci.MANIFEST, oci.DOCKER_MANIFEST)


def parse_reference(reference: str) -> tuple[str, str, str]:
    """(registry, repository, digest) of `REGISTRY/REPOSITORY@sha256:...`."""
    match = _REFERENCE.match(reference)
    if match is None:
        raise PullError(
            f"Image '{reference}' is not pinned by digest (REGISTRY/REPOSITORY@sha256:...)"
        )
    return match["registry"], match["repository"], match["digest"]


def pull(reference: str, layout: Path, limits: Limits = DEFAULT_LIMITS) -> str:
    """Writes the image `reference` names into `layout` (an OCI image layout directory, which
    must not exist yet) and returns its manifest digest. PullError, with nothing written,
    when the registry's answers are not that image or break a limit."""
    registry, repository, digest = parse_reference(reference)
    host = registry.rsplit(":", 1)[0]
    base = f"{'http' if is_loopback(host) else 'https'}://{registry}/v2/{repository}"
    deadline = Deadline(limits.total_seconds)
    layout.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=layout.parent, prefix=f".{layout.name}.partial-"))
    try:
        _pull_into(staging, base, digest, limits, deadline)
        os.rename(staging, layout)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return digest


def _pull_into(staging: Path, base: str, digest: str, limits: Limits, deadline: Deadline) -> None:
    url = f"{base}/manifests/{digest}"
    with get(url, limits, deadline, accept=",".join(_MANIFEST_TYPES)) as body:
        media_type = body.media_type
        data = body.read(
            limits.max_manifest_bytes,
            f"manifest {digest}: larger than the limit of {limits.max_manifest_bytes} bytes",
        )
    actual = oci.sha256_digest(data)
    if actual != digest:
        raise PullError(f"manifest {digest}: the registry sent a document of digest {actual}")
    if media_type not in _MANIFEST_TYPES:
        raise PullError(f"manifest {digest} is a {media_type or 'document'}, not one image")
    descriptors = _descriptors(digest, data)
    declared = sum(d["size"] for d in descriptors)
    if declared > limits.max_image_bytes:
        raise PullError(
            f"manifest {digest}: its blobs declare {declared} bytes, more than the limit of "
            f"{limits.max_image_bytes}"
        )
    _store(staging, digest, len(data), [data])
    for descriptor in descriptors:
        blob, size = descriptor["digest"], descriptor["size"]
        if oci.blob_path(staging, blob).exists():
            continue  # the same blob twice (checked already)
        with get(f"{base}/blobs/{blob}", limits, deadline) as body:
            _store(
                staging,
                blob,
                size,
                body.chunks(size, f"blob {blob}: the registry sent more than its size, {size}"),
            )
    index = {
        "schemaVersion": 2,
        "manifests": [{"mediaType": media_type, "digest": digest, "size": len(data)}],
    }
    (staging / "oci-layout").write_bytes(oci.canonical_json({"imageLayoutVersion": "1.0.0"}))
    (staging / "index.json").write_bytes(oci.canonical_json(index))


def _descriptors(digest: str, data: bytes) -> list[dict]:
    """The config and layer descriptors of an image manifest, each with a sha256 digest and a
    size (an int from 0 up)."""
    try:
        manifest = json.loads(data)
        descriptors = [manifest["config"], *manifest["layers"]]
    except (ValueError, KeyError, TypeError) as error:
        raise PullError(f"manifest {digest}: not an image manifest ({error})") from None
    for descriptor in descriptors:
        blob = descriptor.get("digest") if isinstance(descriptor, dict) else None
        size = descriptor.get("size") if isinstance(descriptor, dict) else None
        if not isinstance(blob, str) or not oci.is_digest(blob):
            raise PullError(f"manifest {digest}: a descriptor's digest {blob!r} is not sha256")
        if type(size) is not int or size < 0:
            raise PullError(f"manifest {digest}: blob {blob} has no valid size ({size!r})")
    return descriptors


def _store(layout: Path, digest: str, size: int, chunks: Iterable[bytes]) -> None:
    """Writes a blob to a temp file in `layout`, renamed to its digest only if the bytes have
    that digest and `size`."""
    directory = layout / "blobs" / "sha256"
    directory.mkdir(parents=True, exist_ok=True)
    received = oci.StreamDigest()
    with tempfile.NamedTemporaryFile(dir=directory, prefix=".partial-", delete=False) as temporary:
        try:
            for chunk in chunks:
                received.update(chunk)
                temporary.write(chunk)
            if received.size != size:
                raise PullError(
                    f"blob {digest}: the registry sent {received.size} bytes, its size is {size}"
                )
            if received.digest != digest:
                raise PullError(
                    f"blob {digest}: the registry sent bytes of digest {received.digest}"
                )
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(temporary.name)
            raise
    os.replace(temporary.name, oci.blob_path(layout, digest))
