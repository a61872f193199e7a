"""Byte-compiles a layer's Python files with the image's own interpreter.

    bytecode.py --python-root ROOT --out DIR --manifest MANIFEST.json
        the .py files of a layer's manifest (`{"path/in/image.py": "file to read", ...}`);
    bytecode.py --python-root ROOT --out DIR --root-sources
        the .py files the Python root lists (its own layer's: the standard library).

ROOT is a deb_layer's Python unpacked by `deb_layer.py --python-root`. Its interpreter runs
through its own dynamic loader and libraries (never the build machine's), isolated from the
build machine's site and environment, with a fixed hash seed, in a fresh process, over the
files in sorted order: the same sources give the same bytes. Each .pyc goes to
DIR/<dir>/__pycache__/<name>.<cache tag>.pyc, where that interpreter looks, checked by source
hash but never against the source (`unchecked-hash`, PEP 552), with the image path as its file
name (what tracebacks print).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

COMPILER = Path(__file__).with_name("compile_in_image.py")


def command(root: Path, description: dict, out: Path) -> tuple[list[str], dict[str, str]]:
    """How to run the root's interpreter on the compiler script, and its whole environment."""
    library_path = ":".join(str(root / path) for path in description["library_path"])
    argv = [
        str(root / description["loader"]),
        "--library-path",
        library_path,
        str(root / description["interpreter"]),
        "-S",  # no site: nothing of the build machine's (or the image's) site-packages
        "-P",  # nor the script's directory on sys.path
        str(COMPILER),
        str(out),
    ]
    env = {
        "PYTHONHOME": str(root / description["home"]),
        "PYTHONHASHSEED": "0",
        "PYTHONDONTWRITEBYTECODE": "1",
        "PYTHONNOUSERSITE": "1",
        "LC_ALL": "C.UTF-8",
    }
    return argv, env


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="bytecode.py")
    parser.add_argument("--python-root", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    sources = parser.add_mutually_exclusive_group(required=True)
    sources.add_argument("--manifest", type=Path)
    sources.add_argument("--root-sources", action="store_true")
    args = parser.parse_args(argv[1:])
    root, out = args.python_root.resolve(), args.out.resolve()
    description = json.loads((root / "python.json").read_text())
    if args.root_sources:
        jobs = {path: str(root / path) for path in description["sources"]}
    else:
        manifest = json.loads(args.manifest.read_text())
        jobs = {
            path.strip("/"): str(Path(source).resolve())
            for path, source in manifest.items()
            if path.endswith(".py")
        }
    out.mkdir(parents=True, exist_ok=True)
    command_argv, env = command(root, description, out)
    result = subprocess.run(command_argv, env=env, input=json.dumps(jobs), text=True, check=False)
    if result.returncode != 0:
        print(f"bytecode.py: {' '.join(command_argv)} exited {result.returncode}", file=sys.stderr)
    return result.returncode


if __name__ == "__main__":
    sys.exit(main(sys.argv))
