"""The image to push, read from the OCI image layout that `oci_image` builds."""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
from pathlib import Path
from typing import IO


def digest_of(data: bytes) -> str:
    """The OCI digest of some bytes: `sha256:<hex>`."""
    return f"sha256:{hashlib.sha256(data).hexdigest()}"


class LayoutError(ValueError):
    """The directory is not an OCI layout with exactly one image."""


@dataclasses.dataclass(frozen=True)
class Blob:
    """A config or layer: what the registry checks (digest, size), and where its bytes are: a
    file, or (for a blob made at push time, such as an artifact's empty config) `data`."""

    digest: str
    size: int
    path: Path | None = None
    data: bytes | None = None

    def __post_init__(self) -> None:
        if (self.path is None) == (self.data is None):
            raise ValueError("a blob is a file or bytes: give exactly one of path and data")

    @classmethod
    def of(cls, data: bytes) -> Blob:
        """A blob held in memory."""
        return cls(digest_of(data), len(data), data=data)

    def open(self) -> IO[bytes]:
        """Its bytes, from the start."""
        if self.path is not None:
            return self.path.open("rb")
        return io.BytesIO(self.data or b"")


@dataclasses.dataclass(frozen=True)
class Image:
    """The manifest as built (pushed byte for byte, so its digest holds) and its blobs; also
    an artifact that refers to an image (referrers.py), which is pushed the same way."""

    manifest: bytes
    manifest_digest: str
    media_type: str
    blobs: list[Blob]  # the config, then the layers, as the manifest lists them


def read_layout(root: Path) -> Image:
    """The single image in `root`, with every blob's file checked for presence and size."""
    try:
        index = json.loads((root / "index.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise LayoutError(f"{root} is not an OCI image layout: {error}") from None
    manifests = index.get("manifests", [])
    if len(manifests) != 1:
        raise LayoutError(f"{root}: expected one image in index.json, found {len(manifests)}")
    descriptor = manifests[0]
    manifest = _blob_path(root, descriptor["digest"]).read_bytes()
    if digest_of(manifest) != descriptor["digest"]:
        raise LayoutError(f"{root}: manifest does not match its digest {descriptor['digest']}")
    document = json.loads(manifest)
    blobs = []
    for blob in [document["config"], *document["layers"]]:
        path = _blob_path(root, blob["digest"])
        if not path.is_file() or path.stat().st_size != blob["size"]:
            raise LayoutError(f"{root}: blob {blob['digest']} is missing or has the wrong size")
        blobs.append(Blob(blob["digest"], blob["size"], path))
    return Image(manifest, descriptor["digest"], descriptor["mediaType"], blobs)


def _blob_path(root: Path, digest: str) -> Path:
    algorithm, _, hex_digest = digest.partition(":")
    return root / "blobs" / algorithm / hex_digest
