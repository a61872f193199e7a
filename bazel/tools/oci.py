"""What every OCI tool of the kit agrees on, written once: media types, the JSON byte form of
the documents it writes, sha256 digests, and where an image layout keeps a blob.

An image's digest is the sha256 of its manifest's bytes, so the builder (oci_image.py), the
pusher (push/) and the SBOM artifact must encode a document the same way: `canonical_json`.
A digest names a file (`blobs/sha256/<hex>`), so one that a registry or a layout sends is
checked against `DIGEST` before it becomes a path: `sha256:../../x` would leave the layout.
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import Any

MANIFEST = "application/vnd.oci.image.manifest.v1+json"
INDEX = "application/vnd.oci.image.index.v1+json"
CONFIG = "application/vnd.oci.image.config.v1+json"
LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"
EMPTY = "application/vnd.oci.empty.v1+json"  # the config of an artifact
ARTIFACT_MANIFEST = "application/vnd.oci.artifact.manifest.v1+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_MANIFEST_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_SIGNED_MANIFEST = "application/vnd.docker.distribution.manifest.v1+prettyjws"

DIGEST = re.compile(r"sha256:[0-9a-f]{64}")
# How much of a blob is hashed at a time: a layer may be GiBs.
CHUNK = 1 << 20


class LayoutError(ValueError):
    """The directory is not an OCI layout of exactly one image, or names a blob it may not."""


def canonical_json(document: Any) -> bytes:
    """Compact JSON with sorted keys: the same document, the same bytes and digest."""
    return json.dumps(document, sort_keys=True, separators=(",", ":")).encode()


class StreamDigest:
    """The OCI digest and size of bytes that come a chunk at a time (a file, a blob a registry
    streams), without holding them."""

    def __init__(self) -> None:
        self._hasher = hashlib.sha256()
        self.size = 0

    def update(self, chunk: bytes) -> None:
        self._hasher.update(chunk)
        self.size += len(chunk)

    @property
    def digest(self) -> str:
        """`sha256:<hex>` of the bytes so far."""
        return f"sha256:{self._hasher.hexdigest()}"


def sha256_digest(data: bytes) -> str:
    """The OCI digest of some bytes: `sha256:<hex>`."""
    stream = StreamDigest()
    stream.update(data)
    return stream.digest


# The config of an artifact (EMPTY): the two bytes `{}`.
EMPTY_CONTENT = b"{}"
EMPTY_DIGEST = sha256_digest(EMPTY_CONTENT)


def file_digest(path: Path) -> str:
    """The OCI digest of a file, read a chunk at a time."""
    stream = StreamDigest()
    with path.open("rb") as blob:
        while chunk := blob.read(CHUNK):
            stream.update(chunk)
    return stream.digest


def is_digest(value: object) -> bool:
    """Whether `value` is a sha256 digest, and so safe to name a file with."""
    # fullmatch, not match with `$`: `$` also matches before a trailing newline.
    return isinstance(value, str) and DIGEST.fullmatch(value) is not None


def blob_path(root: Path, digest: str) -> Path:
    """The file of a blob in the layout `root`; LayoutError for a digest that is not sha256."""
    if not is_digest(digest):
        raise LayoutError(f"{root}: blob digest {digest!r} is not sha256")
    return root / "blobs" / "sha256" / digest.removeprefix("sha256:")


def read_index(root: Path) -> dict[str, Any]:
    """The index.json of the layout `root`, which lists exactly one image."""
    try:
        index = json.loads((root / "index.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise LayoutError(f"{root} is not an OCI image layout: {error}") from None
    manifests = index.get("manifests", [])
    if len(manifests) != 1:
        raise LayoutError(f"{root}: expected one image in index.json, found {len(manifests)}")
    return index


def read_manifest(root: Path) -> tuple[dict[str, Any], bytes]:
    """(descriptor, manifest bytes) of the one image in `root`; LayoutError when the manifest
    does not hash to the digest the index names."""
    (descriptor,) = read_index(root)["manifests"]
    manifest = blob_path(root, descriptor["digest"]).read_bytes()
    if sha256_digest(manifest) != descriptor["digest"]:
        raise LayoutError(f"{root}: manifest does not match its digest {descriptor['digest']}")
    return descriptor, manifest
