"""Writes the part of a requirements lock that some distributions need, hashes and all.

Run by the pip repository rules (standard library and pip's own `packaging` only): the closure
of `--root` distributions (or `--all` of them) over the lock's dependencies (its `# via`
annotations), for a target that is not the Python running the build. A universal lock limits
some pins with environment markers (`; sys_platform == 'win32'`, `; python_version < '3.10'`);
pip would judge those by the interpreter that runs it, so they are judged here for the target
(CPython `--python_version` on Linux `--platform`s) and the pins they exclude are left out, with
what only they need.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

# pip runs on this interpreter anyway (it installs the result): its own copy of `packaging`
# reads markers exactly as pip does.
from pip._vendor.packaging.markers import InvalidMarker, Marker

sys.path.insert(0, str(Path(__file__).parent))
from lock_file import Pin, dependencies, normalize, parse_lock

_LINUX_TAG = re.compile(r"(?:manylinux_\d+_\d+|manylinux\d+|musllinux_\d+_\d+|linux)_(\w+)")


class FilterError(ValueError):
    """The lock, the roots or the target cannot give a package set; the message says why."""


def target_environment(python_version: str, platforms: list[str]) -> dict[str, str]:
    """PEP 508 marker variables of CPython `python_version` (e.g. 3.13) on Linux `platforms`."""
    machines = set()
    for platform in platforms:
        match = _LINUX_TAG.fullmatch(platform)
        if not match:
            raise FilterError(f"platform {platform!r} is not a Linux wheel tag")
        machines.add(match[1])
    if len(machines) != 1:
        raise FilterError(f"platforms {platforms} are not of one machine")
    return {
        "implementation_name": "cpython",
        "implementation_version": python_version,
        "os_name": "posix",
        "platform_machine": machines.pop(),
        "platform_python_implementation": "CPython",
        "platform_release": "",
        "platform_system": "Linux",
        "platform_version": "",
        "python_full_version": python_version,
        "python_version": ".".join(python_version.split(".")[:2]),
        "sys_platform": "linux",
    }


def _applies(pin: Pin, environment: dict[str, str]) -> bool:
    if not pin.marker:
        return True
    try:
        return Marker(pin.marker).evaluate(environment)
    except InvalidMarker as error:
        raise FilterError(f"{pin.name}=={pin.version}: {error}") from None


def filter_lock(lock: str, roots: list[str], environment: dict[str, str]) -> str:
    """The requirements file (pins with their hashes, no markers) that `roots` need in
    `environment`; pins a marker excludes are listed as comments."""
    pins = {pin.label_name: pin for pin in parse_lock(lock)}
    deps = dependencies(list(pins.values()))
    needed, excluded, todo = set(), set(), [normalize(root) for root in roots]
    while todo:
        name = todo.pop()
        if name not in pins:
            raise FilterError(f"{name} is not in the lock")
        if name in needed or name in excluded:
            continue
        if not _applies(pins[name], environment):
            excluded.add(name)
            continue
        needed.add(name)
        todo.extend(deps[name])
    lines = []
    for name in sorted(needed):
        pin = pins[name]
        hashes = " ".join(f"--hash={h}" for h in pin.hashes)
        lines.append(f"{pin.name}=={pin.version} {hashes}")
    for name in sorted(excluded):
        pin = pins[name]
        lines.append(f"# left out, not for the target: {pin.name}=={pin.version} ; {pin.marker}")
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lock", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--root", action="append", default=[])
    parser.add_argument("--all", action="store_true", help="every pin of the lock is a root")
    parser.add_argument("--python_version", required=True, help="the target's CPython, e.g. 3.13")
    parser.add_argument("--platform", action="append", required=True, help="a pip wheel tag")
    args = parser.parse_args()
    try:
        environment = target_environment(args.python_version, args.platform)
        lock = args.lock.read_text(encoding="utf-8")
        roots = [pin.name for pin in parse_lock(lock)] if args.all else args.root
        text = filter_lock(lock, roots, environment)
    except FilterError as error:
        print(f"{args.lock}: {error}", file=sys.stderr)
        return 1
    args.out.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
