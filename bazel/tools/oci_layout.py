"""Reads an OCI image layout the way a registry or runtime would, checking as it goes."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import tarfile
from pathlib import Path


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
        """Applies the layers in order, honouring whiteouts (`.wh.NAME`, `.wh..wh..opq`)."""
        for data in self.layer_tars():
            with tarfile.open(fileobj=io.BytesIO(data)) as tar:
                for member in tar.getmembers():
                    directory, _, name = member.name.rpartition("/")
                    target_dir = rootfs / directory
                    if name == ".wh..wh..opq":
                        for child in target_dir.iterdir():
                            _remove(child)
                    elif name.startswith(".wh."):
                        _remove(target_dir / name[len(".wh.") :])
                    else:
                        _remove(rootfs / member.name, keep_directories=True)
                        tar.extract(member, rootfs, set_attrs=True, filter="fully_trusted")


def _remove(path: Path, keep_directories: bool = False) -> None:
    if path.is_symlink() or path.is_file():
        path.unlink()
    elif path.is_dir() and not keep_directories:
        for child in path.iterdir():
            _remove(child)
        os.rmdir(path)


def image_outputs(env_var: str) -> tuple[Path, Path]:
    """(layout directory, digest file) of an oci_image, from `$(rootpaths ...)` in `env_var`."""
    paths = [Path(p) for p in os.environ[env_var].split()]
    directory = next(p for p in paths if p.is_dir())
    digest = next(p for p in paths if p.name.endswith(".digest"))
    return directory, digest
