"""An OCI layout as a `docker load` tarball: `docker_archive.py LAYOUT_DIR TAG OUT.tar`."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from bazel.tools import layer_tar
from bazel.tools.layer_tar import Entry


def entries(layout: Path, tag: str) -> list[Entry]:
    index = json.loads((layout / "index.json").read_text())
    manifest_digest = index["manifests"][0]["digest"].removeprefix("sha256:")
    manifest = json.loads((layout / "blobs" / "sha256" / manifest_digest).read_text())

    def blob(descriptor: dict) -> tuple[str, bytes]:
        digest = descriptor["digest"].removeprefix("sha256:")
        return f"blobs/sha256/{digest}", (layout / "blobs" / "sha256" / digest).read_bytes()

    config_path, config = blob(manifest["config"])
    layers = [blob(layer) for layer in manifest["layers"]]
    docker_manifest = [{"Config": config_path, "RepoTags": [tag], "Layers": [p for p, _ in layers]}]
    files = [Entry(config_path, data=config), *(Entry(p, data=d) for p, d in layers)]
    files.append(Entry("manifest.json", data=json.dumps(docker_manifest, sort_keys=True).encode()))
    return files


def main(argv: list[str]) -> int:
    if len(argv) != 4:
        print("usage: docker_archive.py LAYOUT_DIR TAG OUT.tar", file=sys.stderr)
        return 2
    layer = layer_tar.build(entries(Path(argv[1]), argv[2]))
    Path(argv[3]).write_bytes(layer.tar)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
