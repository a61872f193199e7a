"""Reads an OCI image layout the way a registry or runtime would, checking as it goes."""

from __future__ import annotations

import gzip
import json
import os
import shutil
import stat
import tempfile
from pathlib import Path

from bazel.tools.layer_unpack import (
    DEFAULT_UNPACK_LIMITS,
    UnpackError,
    UnpackLimits,
    apply_gzipped_layer,
)
from bazel.tools.oci import blob_path, file_digest, read_index


class Layout:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.index = read_index(root)
        (self.manifest_descriptor,) = self.index["manifests"]
        self.manifest = self.json_blob(self.manifest_descriptor)
        self.config = self.json_blob(self.manifest["config"])

    def blob_path(self, descriptor: dict) -> Path:
        """The file of the blob a descriptor names, after checking its digest and size, a piece
        at a time (a layer may be GiBs)."""
        path = blob_path(self.root, descriptor["digest"])
        if file_digest(path) != descriptor["digest"] or path.stat().st_size != descriptor["size"]:
            raise ValueError(f"blob {descriptor['digest']} does not match its descriptor")
        return path

    def blob(self, descriptor: dict) -> bytes:
        """The blob a descriptor names, after checking its digest and size."""
        return self.blob_path(descriptor).read_bytes()

    def json_blob(self, descriptor: dict) -> dict:
        return json.loads(self.blob(descriptor))

    def layer_tars(self) -> list[bytes]:
        return [gzip.decompress(self.blob(layer)) for layer in self.manifest["layers"]]

    def unpack(self, rootfs: Path, limits: UnpackLimits = DEFAULT_UNPACK_LIMITS) -> None:
        """Applies the layers in order, honouring whiteouts, to `rootfs`, an empty directory
        (whose mode the root keeps). layer_unpack.UnpackError (a ValueError) that names the
        layer, for an entry that would reach outside `rootfs`, a device node or fifo, or a
        layer over `limits`. The layers go to a temp directory beside `rootfs` that replaces it
        once all are in: a refused image leaves `rootfs` empty."""
        if any(rootfs.iterdir()):
            raise ValueError(f"{rootfs}: not empty, so not an image's root to unpack into")
        staging = Path(tempfile.mkdtemp(dir=rootfs.parent, prefix=f".{rootfs.name}.unpacking-"))
        try:
            staging.chmod(stat.S_IMODE(rootfs.stat().st_mode))
            unpacked = 0
            for layer in self.manifest["layers"]:
                try:
                    unpacked += apply_gzipped_layer(
                        self.blob_path(layer), staging, limits, unpacked
                    )
                except UnpackError as error:
                    raise UnpackError(f"layer {layer['digest']}: {error}") from None
            os.rename(staging, rootfs)  # over an empty directory: one step
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise


def image_outputs(env_var: str) -> tuple[Path, Path]:
    """(layout directory, digest file) of an oci_image, from `$(rootpaths ...)` in `env_var`."""
    paths = [Path(p) for p in os.environ[env_var].split()]
    directory = next(p for p in paths if p.is_dir())
    digest = next(p for p in paths if p.name.endswith(".digest"))
    return directory, digest
