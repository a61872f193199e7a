"""Writes the BUILD files of a pip hub repository after pip has installed a lock into it.

Runs inside the repository rule (so only the standard library): every distribution in the lock
becomes a py_library of exactly the files its wheel's RECORD lists, depending on the
distributions the lock says it needs.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from lock_file import Pin, dependencies, normalize, read_lock


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


def library(pin: Pin, files: list[str], deps: list[str], site_packages: str) -> str:
    srcs = [f"{site_packages}/{f}" for f in files if f.endswith(".py")]
    data = [f"{site_packages}/{f}" for f in files if not f.endswith(".py")]
    return f"""
# {pin.name}=={pin.version}
py_library(
    name = {json.dumps(pin.label_name)},
    srcs = {json.dumps(srcs, indent=8)},
    data = {json.dumps(data, indent=8)},
    imports = [{json.dumps(site_packages)}],
    deps = {json.dumps([":" + d for d in deps])},
)
"""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--lock", type=Path, required=True)
    parser.add_argument("--site_packages", required=True)
    parser.add_argument("--rules_python", required=True, help="label of the .bzl with py_library")
    args = parser.parse_args()

    pins = read_lock(args.lock)
    installed = installed_files(Path(args.site_packages))
    deps = dependencies(pins)
    stray_build_files = [p for p in Path(args.site_packages).rglob("BUILD*") if p.is_file()]
    if stray_build_files:
        print(f"wheel files would split the hub's package: {stray_build_files}", file=sys.stderr)
        return 1

    root = [
        f'load("{args.rules_python}", "py_library")',
        "",
        'package(default_visibility = ["//visibility:public"])',
        "",
        'exports_files(["install_report.json"])',
    ]
    for pin in pins:
        # A pin whose marker excludes this platform is not installed: an empty library.
        files = installed.get(pin.label_name, [])
        root.append(library(pin, files, deps[pin.label_name], args.site_packages))
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
