"""Writes the BUILD file of a pip target repository (the image's packages) after pip ran.

Runs inside the repository rule (standard library only). Each distribution of the lock that pip
installed for the image's platform becomes a filegroup of exactly its wheel's files (its
RECORD), and one `pip_image_packages` target describes them all: each one's version and what
it needs (the lock's `# via`), and each pin that could not be installed with why. A service's
packages layer then takes the closure of what its binary imports, and names any that cannot go
in, at analysis time instead of at the fetch.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from write_hub_build_files import installed_files

from lock_file import dependencies, read_lock


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lock", type=Path, required=True)
    parser.add_argument("--lock_label", required=True, help="the lock, as messages name it")
    parser.add_argument("--site_packages", required=True)
    parser.add_argument("--rules", required=True, help="label of the .bzl of pip_image_packages")
    args = parser.parse_args()

    pins = read_lock(args.lock)
    installed = installed_files(Path(args.site_packages))
    deps = dependencies(pins)
    lines = [
        f'load("{args.rules}", "pip_image_packages")',
        "",
        'exports_files(["install_report.json"])',
    ]
    distributions, requires, unavailable = {}, {}, {}
    for pin in pins:
        name = pin.label_name
        if name not in installed:
            # filter_lock left it out: its marker excludes the image, or no root needs it.
            why = (
                f"only for `{pin.marker}`" if pin.marker else "not needed by the repository's roots"
            )
            unavailable[name] = f"{pin.name}=={pin.version} is {why}"
            continue
        files = [f"{args.site_packages}/{path}" for path in installed[name]]
        lines.append(f"""
filegroup(
    name = {json.dumps(name)},
    srcs = {json.dumps(files, indent=8)},
)""")
        distributions[":" + name] = f"{name}=={pin.version}"
        requires[name] = [dep for dep in deps[name] if dep in installed]
    lines.append(f"""
pip_image_packages(
    name = "packages",
    distributions = {json.dumps(distributions, indent=8)},
    install_report = "install_report.json",
    lock = {json.dumps(args.lock_label)},
    requires = {json.dumps(requires, indent=8)},
    unavailable = {json.dumps(unavailable, indent=8)},
    visibility = ["//visibility:public"],
)
""")
    Path("BUILD.bazel").write_text("\n".join(lines), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
