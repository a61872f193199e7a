"""Assembles an OCI image layout from layers: `oci_image.py --spec SPEC.json`.

Writes the layout directory (`oci-layout`, `index.json`, `blobs/sha256/...`), a file with the
manifest's digest and a copy of the config, for rules that read the image's settings. The config
and manifest are canonical JSON (sorted keys, no spaces) with no timestamps, so equal inputs give
an equal digest. An entrypoint whose program is not in the layers fails the build here, not the
container at its first start on Cloud Run.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

from bazel.tools import oci
from bazel.tools.oci import blob_path, canonical_json, sha256_digest
from bazel.tools.workspace_status import read_status

STAMP_LABELS = {
    "org.opencontainers.image.revision": "STABLE_GIT_COMMIT",
    "org.opencontainers.image.version": "STABLE_RELEASE",
}


class StampError(ValueError):
    """A stamped build whose workspace status lacks a key the labels need."""


def stamp_labels(status_files: list[str]) -> dict[str, str]:
    """Labels from Bazel's workspace status, for a stamped build (status files given): each
    key must be there (tools/workspace_status.sh leaves the git ones out outside a git
    checkout), so that no stamped image is labelled with a revision nobody can find."""
    if not status_files:
        return {}
    values = read_status(status_files)
    missing = [key for key in STAMP_LABELS.values() if not values.get(key)]
    if missing:
        raise StampError(
            f"--stamp: the workspace status has no {' or '.join(missing)}: "
            "tools/workspace_status.sh takes them from git; stamp from a git checkout (or "
            "set RELEASE for STABLE_RELEASE)"
        )
    return {label: values[key] for label, key in STAMP_LABELS.items()}


# Symlinks followed before a path counts as a loop, as Linux gives up (ELOOP) after 40.
MAX_SYMLINKS = 40


class EntrypointError(ValueError):
    """The image's entrypoint names a program its layers do not have."""


def resolve(path: str, paths: dict[str, str | None]) -> str | None:
    """`path` (absolute) with symlinks followed through the layers' `paths` (path without the
    leading `/` -> link target, None for a file); None when it leads nowhere."""
    parts = path.strip("/").split("/")
    resolved: list[str] = []
    hops = 0
    while parts:
        part = parts.pop(0)
        if part in ("", "."):
            continue
        if part == "..":
            resolved = resolved[:-1]
            continue
        candidate = "/".join([*resolved, part])
        link = paths.get(candidate)
        if link is not None:  # a symlink: go on from its target
            hops += 1
            if hops > MAX_SYMLINKS:
                return None
            parts = link.strip("/").split("/") + parts
            if link.startswith("/"):
                resolved = []
            continue
        # A file, or a directory (only implied by what is under it: directories are not listed).
        if candidate not in paths and not any(p.startswith(candidate + "/") for p in paths):
            return None
        resolved.append(part)
    return "/".join(resolved)


def check_entrypoint(entrypoint: list[str], paths: dict[str, str | None]) -> None:
    """Fails unless the entrypoint's program is a file of the layers (later layers win)."""
    if not entrypoint:
        return
    program = entrypoint[0]
    resolved = resolve(program, paths)
    if resolved is not None and paths.get(resolved, "") is None:
        return
    directory = program.rsplit("/", 1)[0].strip("/")
    stem = program.rsplit("/", 1)[-1]
    near = sorted(
        "/" + p
        for p in paths
        if p.rsplit("/", 1)[0] == directory and p.rsplit("/", 1)[-1].startswith(stem)
    )
    hint = f"; the layers have {', '.join(near)}" if near else ""
    raise EntrypointError(f"the entrypoint {program} is not a file of the image's layers{hint}")


class Layout:
    def __init__(self, root: Path) -> None:
        self.root = root
        (root / "blobs" / "sha256").mkdir(parents=True, exist_ok=True)

    def add(self, data: bytes, media_type: str) -> dict:
        digest = sha256_digest(data)
        blob_path(self.root, digest).write_bytes(data)
        return {"mediaType": media_type, "digest": digest, "size": len(data)}

    def add_file(self, path: Path, digest: str, media_type: str) -> dict:
        shutil.copyfile(path, blob_path(self.root, digest))
        return {"mediaType": media_type, "digest": digest, "size": path.stat().st_size}


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--spec", required=True, type=Path)
    args = parser.parse_args(argv[1:])
    spec = json.loads(args.spec.read_text())

    paths: dict[str, str | None] = {}
    for layer in spec["layers"]:
        paths.update(json.loads(Path(layer["paths"]).read_text()))
    try:
        check_entrypoint(spec["config"].get("Entrypoint", []), paths)
    except EntrypointError as error:
        print(f"oci_image: {error}", file=sys.stderr)
        return 1

    layout = Layout(Path(spec["out_dir"]))
    layers, diff_ids = [], []
    for layer in spec["layers"]:
        digest = Path(layer["digest"]).read_text().strip()
        layers.append(layout.add_file(Path(layer["blob"]), digest, oci.LAYER))
        diff_ids.append(Path(layer["diff_id"]).read_text().strip())

    image = spec["config"]
    try:
        stamped = stamp_labels(spec.get("status_files", []))
    except StampError as error:
        print(f"oci_image: {error}", file=sys.stderr)
        return 1
    labels = {**image.get("Labels", {}), **stamped}
    config = {
        "architecture": spec["architecture"],
        "os": spec["os"],
        "config": {**image, "Labels": labels} if labels else image,
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
    }
    config_bytes = canonical_json(config)
    Path(spec["config_out"]).write_bytes(config_bytes)
    manifest = {
        "schemaVersion": 2,
        "mediaType": oci.MANIFEST,
        "config": layout.add(config_bytes, oci.CONFIG),
        "layers": layers,
    }
    descriptor = layout.add(canonical_json(manifest), oci.MANIFEST)
    descriptor["platform"] = {"architecture": spec["architecture"], "os": spec["os"]}
    index = {"schemaVersion": 2, "mediaType": oci.INDEX, "manifests": [descriptor]}
    (layout.root / "index.json").write_bytes(canonical_json(index))
    (layout.root / "oci-layout").write_bytes(canonical_json({"imageLayoutVersion": "1.0.0"}))
    Path(spec["digest_out"]).write_text(descriptor["digest"])
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
