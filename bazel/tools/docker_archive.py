"""An OCI layout as a `docker load` tarball: `docker_archive.py LAYOUT_DIR TAG OUT.tar`."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from bazel.tools import layer_tar
from bazel.tools.layer_tar import Entry
from bazel.tools.oci import blob_path, read_manifest


def entries(layout: Path, tag: str) -> list[Entry]:
    manifest = json.loads(read_manifest(layout)[1])

    def blob(descriptor: dict) -> tuple[str, bytes]:
        path = blob_path(layout, descriptor["digest"])
        return path.relative_to(layout).as_posix(), path.read_bytes()

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
