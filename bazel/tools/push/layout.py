"""The image to push, read from the OCI image layout that `oci_image` builds."""

from __future__ import annotations

import dataclasses
import io
import json
from pathlib import Path
from typing import IO

from bazel.tools.oci import LayoutError, blob_path, read_manifest, sha256_digest

__all__ = ["Blob", "Image", "LayoutError", "read_layout"]


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
        return cls(sha256_digest(data), len(data), data=data)

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
    descriptor, manifest = read_manifest(root)
    document = json.loads(manifest)
    blobs = []
    for blob in [document["config"], *document["layers"]]:
        path = blob_path(root, blob["digest"])
        if not path.is_file() or path.stat().st_size != blob["size"]:
            raise LayoutError(f"{root}: blob {blob['digest']} is missing or has the wrong size")
        blobs.append(Blob(blob["digest"], blob["size"], path))
    return Image(manifest, descriptor["digest"], descriptor["mediaType"], blobs)
