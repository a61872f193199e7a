"""A layer of files laid out by a manifest: `files_layer.py OUT MANIFEST.json [BYTECODE]`.

The manifest, written by the Bazel rule, maps each destination path in the image to the file
to copy (`{"app/python/server/main.py": "bazel-out/.../main.py", ...}`). A file's mode comes from
its bytes (layer_tar.file_mode), never from the input's permission bits, which differ between a
local and a remote build; everything else is normalized as in every layer of the kit.
BYTECODE, a directory laid out as the image (bytecode.py's output), adds its files at their
paths.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from bazel.tools import layer_tar
from bazel.tools.layer_tar import Entry


def entries(manifest: dict[str, str]) -> list[Entry]:
    result = []
    for destination, source in manifest.items():
        data = Path(source).read_bytes()
        result.append(Entry(destination, data=data, mode=layer_tar.file_mode(data)))
    return result


def main(argv: list[str]) -> int:
    if len(argv) not in (3, 4):
        print("usage: files_layer.py OUT MANIFEST.json [BYTECODE_DIR]", file=sys.stderr)
        return 2
    layer = entries(json.loads(Path(argv[2]).read_text()))
    if len(argv) == 4:
        layer += layer_tar.tree_entries(Path(argv[3]))
    layer_tar.write(layer_tar.build(layer), Path(argv[1]))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
