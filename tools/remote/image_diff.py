"""Where two builds of one image first differ: `image_diff.py LAYOUT_A LAYOUT_B`.

CI builds each image locally and on the remote workers and requires the same digest
(.ci/remote_checks, docs/remote-builds.md). A bare "the digests differ" says nothing about the
cause, so this prints the first layer whose digest differs and, inside it, the first tar entry
that differs (name, type, mode, owner, date, size, link or content): the header field that
differs is where the build is not hermetic (once: file modes taken from the inputs' permission
bits, which a remote executor sets its own way). Identical layers with different images mean
the configs differ: the first differing key is printed.

Exit status: 0 when the images are the same, 1 when they differ, 2 on an unreadable layout.
"""

from __future__ import annotations

import gzip
import io
import json
import sys
import tarfile
from pathlib import Path
from typing import Any

from bazel.tools import oci


def _blob(root: Path, digest: str) -> bytes:
    return oci.blob_path(root, digest).read_bytes()


def manifest(root: Path) -> tuple[str, dict[str, Any]]:
    """The digest and manifest of the one image in the layout at `root`."""
    descriptor, raw = oci.read_manifest(root)
    return descriptor["digest"], json.loads(raw)


def _entries(layer: bytes) -> list[tuple[tarfile.TarInfo, bytes | None]]:
    with tarfile.open(fileobj=io.BytesIO(gzip.decompress(layer))) as tar:
        return [
            (member, tar.extractfile(member).read() if member.isfile() else None)
            for member in tar.getmembers()
        ]


def _header(member: tarfile.TarInfo) -> str:
    return (
        f"type {member.type.decode()} mode {member.mode:04o} owner {member.uid}:{member.gid} "
        f"mtime {member.mtime} size {member.size}"
        + (f" link {member.linkname}" if member.linkname else "")
        + (f" pax {member.pax_headers}" if member.pax_headers else "")
    )


def first_entry_difference(layer_a: bytes, layer_b: bytes) -> str:
    """The first tar entry, in archive order, that differs between two layer blobs."""
    entries_a, entries_b = _entries(layer_a), _entries(layer_b)
    for (member_a, data_a), (member_b, data_b) in zip(entries_a, entries_b, strict=False):
        if member_a.name != member_b.name:
            return f"entry names differ: {member_a.name} vs {member_b.name}"
        if _header(member_a) != _header(member_b):
            return f"{member_a.name}: {_header(member_a)} vs {_header(member_b)}"
        if data_a != data_b:
            return f"{member_a.name}: contents differ"
    if len(entries_a) != len(entries_b):
        return f"{len(entries_a)} vs {len(entries_b)} entries"
    return "same entries, different compression"


def differences(root_a: Path, root_b: Path) -> list[str]:
    """Lines saying where image A first differs from image B; none when they are the same."""
    digest_a, manifest_a = manifest(root_a)
    digest_b, manifest_b = manifest(root_b)
    if digest_a == digest_b:
        return []
    lines = [f"images differ: {digest_a} vs {digest_b}"]
    layers_a, layers_b = manifest_a["layers"], manifest_b["layers"]
    for number, (layer_a, layer_b) in enumerate(zip(layers_a, layers_b, strict=False), start=1):
        if layer_a["digest"] != layer_b["digest"]:
            lines.append(
                f"first differing layer: {number} of {len(layers_a)}: "
                f"{layer_a['digest']} vs {layer_b['digest']}"
            )
            blob_a, blob_b = _blob(root_a, layer_a["digest"]), _blob(root_b, layer_b["digest"])
            lines.append("first differing entry: " + first_entry_difference(blob_a, blob_b))
            return lines
    if len(layers_a) != len(layers_b):
        lines.append(f"{len(layers_a)} vs {len(layers_b)} layers, the common ones the same")
        return lines
    config_a = json.loads(_blob(root_a, manifest_a["config"]["digest"]))
    config_b = json.loads(_blob(root_b, manifest_b["config"]["digest"]))
    keys = sorted(set(config_a) | set(config_b))
    differing = [key for key in keys if config_a.get(key) != config_b.get(key)]
    lines.append(f"same layers; the configs differ in {', '.join(differing) or 'encoding'}")
    return lines


def main(argv: list[str]) -> int:
    if len(argv) != 3:
        print("usage: image_diff.py LAYOUT_A LAYOUT_B", file=sys.stderr)
        return 2
    try:
        lines = differences(Path(argv[1]), Path(argv[2]))
    except (ValueError, KeyError, tarfile.TarError, OSError) as error:
        print(f"image_diff: {error}", file=sys.stderr)
        return 2
    for line in lines:
        print(line)
    return 1 if lines else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
