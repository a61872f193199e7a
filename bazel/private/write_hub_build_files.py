"""Writes the BUILD files of a pip hub repository after pip has installed a lock into it.

Runs inside the repository rule (so only the standard library): every distribution in the lock
becomes a py_library of exactly the files its wheel's RECORD lists, depending on the
distributions the lock says it needs, tagged `pip_distribution=LABEL_NAME==VERSION`.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from lock_file import Pin, dependencies, normalize, read_lock

# Marks each library as the distribution it installs: py_packages_layer's aspect reads it to
# put exactly the binary's distributions, at the same versions, in its image.
DISTRIBUTION_TAG = "pip_distribution="


def installed_files(site_packages: Path) -> dict[str, list[str]]:
    """Files of each installed distribution, relative to site-packages, keyed by label name."""
    files: dict[str, list[str]] = {}
    for dist_info in sorted(site_packages.glob("*.dist-info")):
        name = next(
            line.split(":", 1)[1].strip()
            for line in (dist_info / "METADATA").read_text(encoding="utf-8").splitlines()
            if line.startswith("Name:")
        )
        paths = []
        for row in (dist_info / "RECORD").read_text(encoding="utf-8").splitlines():
            path = row.rsplit(",", 2)[0]
            if "__pycache__" in path or path.endswith(".pyc"):
                continue
            if path.startswith("../"):
                # Scripts: `pip install --target` puts them in <target>/bin.
                parts = path.split("/")
                if "bin" not in parts:
                    continue
                path = "/".join(parts[parts.index("bin") :])
            if (site_packages / path).is_file():
                paths.append(path)
        files[normalize(name)] = sorted(paths)
    return files


def library(
    pin: Pin, files: list[str], deps: list[str], site_packages: str, cache_tag: str | None
) -> str:
    srcs = [f"{site_packages}/{f}" for f in files if f.endswith(".py")]
    data = [f"{site_packages}/{f}" for f in files if not f.endswith(".py")]
    bytecode = ""
    if cache_tag and srcs:
        # A leading underscore: no distribution's name starts with one, so no clash.
        name = f"_{pin.label_name}_bytecode"
        data.append(f":{name}")
        bytecode = f"""
py_bytecode(
    name = {json.dumps(name)},
    srcs = {json.dumps(srcs, indent=8)},
    cache_tag = {json.dumps(cache_tag)},
)
"""
    return f"""
# {pin.name}=={pin.version}{bytecode}
py_library(
    name = {json.dumps(pin.label_name)},
    srcs = {json.dumps(srcs, indent=8)},
    data = {json.dumps(data, indent=8)},
    imports = [{json.dumps(site_packages)}],
    tags = [{json.dumps(DISTRIBUTION_TAG + pin.label_name + "==" + pin.version)}],
    deps = {json.dumps([":" + d for d in deps])},
)
"""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--lock", type=Path, required=True)
    parser.add_argument("--site_packages", required=True)
    parser.add_argument("--rules_python", required=True, help="label of the .bzl with py_library")
    parser.add_argument("--py_bytecode", required=True, help="label of the .bzl with py_bytecode")
    parser.add_argument(
        "--cache_tag",
        help="the toolchain interpreter's cache tag (cpython-313): each library gets the "
        "bytecode of its sources; without it, none",
    )
    args = parser.parse_args()

    pins = read_lock(args.lock)
    installed = installed_files(Path(args.site_packages))
    deps = dependencies(pins)
    stray_build_files = [p for p in Path(args.site_packages).rglob("BUILD*") if p.is_file()]
    if stray_build_files:
        print(f"wheel files would split the hub's package: {stray_build_files}", file=sys.stderr)
        return 1

    root = [
        f'load("{args.py_bytecode}", "py_bytecode")',
        f'load("{args.rules_python}", "py_library")',
        "",
        'package(default_visibility = ["//visibility:public"])',
        "",
        'exports_files(["install_report.json"])',
    ]
    for pin in pins:
        # A pin whose marker excludes this platform is not installed: an empty library.
        files = installed.get(pin.label_name, [])
        root.append(library(pin, files, deps[pin.label_name], args.site_packages, args.cache_tag))
        package = Path(pin.label_name)
        package.mkdir(exist_ok=True)
        (package / "BUILD.bazel").write_text(
            'package(default_visibility = ["//visibility:public"])\n\n'
            f'alias(name = "{pin.label_name}", actual = "//:{pin.label_name}")\n',
            encoding="utf-8",
        )
    Path("BUILD.bazel").write_text("\n".join(root), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
