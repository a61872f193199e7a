"""Writes the part of a requirements lock that some distributions need, hashes and all.

Run by pip_target_repository (standard library only): the closure of `--root` distributions
over the lock's dependencies (its `# via` annotations).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from lock_file import dependencies, normalize, read_lock


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lock", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--root", action="append", default=[])
    args = parser.parse_args()

    pins = {pin.label_name: pin for pin in read_lock(args.lock)}
    deps = dependencies(list(pins.values()))
    needed, todo = set(), [normalize(root) for root in args.root]
    while todo:
        name = todo.pop()
        if name not in pins:
            print(f"{name} is not in {args.lock}", file=sys.stderr)
            return 1
        if name not in needed:
            needed.add(name)
            todo.extend(deps[name])
    lines = []
    for name in sorted(needed):
        pin = pins[name]
        hashes = " ".join(f"--hash={h}" for h in pin.hashes)
        lines.append(f"{pin.name}=={pin.version} {hashes}")
    args.out.write_text("\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
