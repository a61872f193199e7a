"""Reads an OCI image layout the way a registry or runtime would, checking as it goes."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import tarfile
from pathlib import Path

from bazel.tools.layer_unpack import apply_layer


class Layout:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.index = json.loads((root / "index.json").read_text())
        (self.manifest_descriptor,) = self.index["manifests"]
        self.manifest = self.json_blob(self.manifest_descriptor)
        self.config = self.json_blob(self.manifest["config"])

    def blob(self, descriptor: dict) -> bytes:
        """The blob a descriptor names, after checking its digest and size."""
        algorithm, digest = descriptor["digest"].split(":")
        data = (self.root / "blobs" / algorithm / digest).read_bytes()
        if hashlib.sha256(data).hexdigest() != digest or len(data) != descriptor["size"]:
            raise ValueError(f"blob {descriptor['digest']} does not match its descriptor")
        return data

    def json_blob(self, descriptor: dict) -> dict:
        return json.loads(self.blob(descriptor))

    def layer_tars(self) -> list[bytes]:
        return [gzip.decompress(self.blob(layer)) for layer in self.manifest["layers"]]

    def unpack(self, rootfs: Path) -> None:
        """Applies the layers in order, honouring whiteouts (`.wh.NAME`, `.wh..wh..opq`);
        layer_unpack.UnpackError (a ValueError) for an entry that would reach outside
        `rootfs`, or a device node or fifo."""
        for data in self.layer_tars():
            with tarfile.open(fileobj=io.BytesIO(data)) as tar:
                apply_layer(tar, rootfs)


def image_outputs(env_var: str) -> tuple[Path, Path]:
    """(layout directory, digest file) of an oci_image, from `$(rootpaths ...)` in `env_var`."""
    paths = [Path(p) for p in os.environ[env_var].split()]
    directory = next(p for p in paths if p.is_dir())
    digest = next(p for p in paths if p.name.endswith(".digest"))
    return directory, digest
