"""Small OCI images made inside a test: layers written entry by entry with `tarfile` (hostile
ones included: absolute names, `..`, links out of the root, device nodes), then the config and
manifest around them, as the blobs a registry serves or as a layout that Layout reads."""

from __future__ import annotations

import dataclasses
import gzip
import io
import json
import os
import tarfile
from pathlib import Path

from bazel.tools import oci
from bazel.tools.oci import sha256_digest

MANIFEST_TYPE = oci.MANIFEST


@dataclasses.dataclass(frozen=True)
class Entry:
    """One tar entry: `kind` is a tarfile type (REGTYPE, DIRTYPE, SYMTYPE, LNKTYPE, CHRTYPE,
    FIFOTYPE...)."""

    name: str
    kind: bytes = tarfile.REGTYPE
    data: bytes = b""
    linkname: str = ""
    mode: int = 0o644


def file(name: str, data: bytes = b"data") -> Entry:
    return Entry(name, data=data)


def directory(name: str) -> Entry:
    return Entry(name, tarfile.DIRTYPE, mode=0o755)


def symlink(name: str, target: str) -> Entry:
    return Entry(name, tarfile.SYMTYPE, linkname=target, mode=0o777)


def hardlink(name: str, target: str) -> Entry:
    return Entry(name, tarfile.LNKTYPE, linkname=target)


def layer(*entries: Entry) -> bytes:
    """A gzipped tar of `entries`, in order, owned by the test's own user (so that extracting
    it needs no root)."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for entry in entries:
            info = tarfile.TarInfo(entry.name)
            info.type = entry.kind
            info.linkname = entry.linkname
            info.mode = entry.mode
            info.uid, info.gid = os.getuid(), os.getgid()
            info.size = len(entry.data) if entry.kind == tarfile.REGTYPE else 0
            tar.addfile(info, io.BytesIO(entry.data) if info.size else None)
    return gzip.compress(buffer.getvalue(), mtime=0)


@dataclasses.dataclass(frozen=True)
class Image:
    manifest: bytes
    blobs: dict[str, bytes]  # the config and layers, by digest

    @property
    def digest(self) -> str:
        return sha256_digest(self.manifest)

    @property
    def layer_digests(self) -> list[str]:
        return [d["digest"] for d in json.loads(self.manifest)["layers"]]


def image(*layers: bytes) -> Image:
    config = json.dumps(
        {
            "architecture": "amd64",
            "os": "linux",
            "config": {"User": "65532:65532"},
            "rootfs": {"type": "layers", "diff_ids": []},
        }
    ).encode()
    blobs = {sha256_digest(config): config} | {sha256_digest(data): data for data in layers}

    def descriptor(media_type: str, data: bytes) -> dict:
        return {"mediaType": media_type, "digest": sha256_digest(data), "size": len(data)}

    manifest = {
        "schemaVersion": 2,
        "mediaType": MANIFEST_TYPE,
        "config": descriptor(oci.CONFIG, config),
        "layers": [descriptor(oci.LAYER, data) for data in layers],
    }
    return Image(json.dumps(manifest).encode(), blobs)


def write_layout(img: Image, root: Path) -> Path:
    """`img` as an OCI image layout at `root` (what registry_pull writes)."""
    blobs = root / "blobs" / "sha256"
    blobs.mkdir(parents=True)
    for digest, data in [(img.digest, img.manifest), *img.blobs.items()]:
        (blobs / digest.removeprefix("sha256:")).write_bytes(data)
    descriptor = {"mediaType": MANIFEST_TYPE, "digest": img.digest, "size": len(img.manifest)}
    (root / "index.json").write_text(json.dumps({"schemaVersion": 2, "manifests": [descriptor]}))
    (root / "oci-layout").write_text(json.dumps({"imageLayoutVersion": "1.0.0"}))
    return root
