"""Resolves deploy/base/packages.txt against Debian's package index into debs.lock.json:
`./bazelw run //deploy/base:lock`.

Each package of the closure of `Depends` and `Pre-Depends` (first alternative that exists,
virtual packages through `Provides`) is pinned with version, sha256 and two URLs:
snapshot.debian.org at the time of the index first, so the lock keeps working after a point
release removes the version from the mirrors, and the deb.debian.org pool second. Packages
that only make sense on a system with a shell and a package manager are left out (EXCLUDED):
the image has neither.
"""

from __future__ import annotations

import argparse
import email.utils
import json
import lzma
import os
import re
import sys
import tempfile
import urllib.request
from pathlib import Path

MIRROR = "https://deb.debian.org/debian"
SNAPSHOT = "https://snapshot.debian.org/archive/debian"
SUITE = "trixie"
ARCH = "amd64"
# Maintainer-script machinery, shells and tools a distroless image does without.
EXCLUDED = {
    "base-files",
    "bash",
    "coreutils",
    "dash",
    "debconf",
    "debconf-2.0",
    "debianutils",
    "dpkg",
    "init-system-helpers",
    "libc-bin",
    "openssl",
    "perl-base",
    "sensible-utils",
    "media-types",
    "netbase",
    "readline-common",
    "sed",
    "mawk",
    "awk",
    # Terminal and Berkeley DB libraries, for Python modules a server does not import
    # (readline, curses, dbm.ndbm).
    "libreadline8t64",
    "libncursesw6",
    "libtinfo6",
    "libdb5.3t64",
}


def fetch(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=120) as response:
        return response.read()


def parse_index(text: str) -> dict[str, dict[str, str]]:
    packages: dict[str, dict[str, str]] = {}
    for stanza in text.split("\n\n"):
        fields: dict[str, str] = {}
        key = None
        for line in stanza.splitlines():
            if line.startswith((" ", "\t")) and key:
                fields[key] += "\n" + line
            elif ":" in line:
                key, _, value = line.partition(":")
                fields[key] = value.strip()
        if "Package" in fields:
            packages[fields["Package"]] = fields
    return packages


def providers(packages: dict[str, dict[str, str]]) -> dict[str, list[str]]:
    provided: dict[str, list[str]] = {}
    for name, fields in sorted(packages.items()):
        for entry in fields.get("Provides", "").split(","):
            if virtual := entry.strip().split(" ")[0]:
                provided.setdefault(virtual, []).append(name)
    return provided


def resolve(wanted: list[str], packages: dict[str, dict[str, str]]) -> list[str]:
    provided = providers(packages)
    chosen: set[str] = set()
    todo = list(wanted)
    while todo:
        name = todo.pop()
        if name in chosen or name in EXCLUDED:
            continue
        if name not in packages:
            raise SystemExit(f"lock: no package {name!r} in {SUITE}/{ARCH}")
        chosen.add(name)
        fields = packages[name]
        depends = ",".join(filter(None, (fields.get("Pre-Depends"), fields.get("Depends"))))
        for group in filter(None, (g.strip() for g in depends.split(","))):
            alternatives = [re.split(r"[\s(:]", a.strip(), maxsplit=1)[0] for a in group.split("|")]
            if any(a in EXCLUDED or a in chosen for a in alternatives):
                continue
            pick = next((a for a in alternatives if a in packages), None)
            pick = pick or next((provided[a][0] for a in alternatives if a in provided), None)
            if pick is None:
                raise SystemExit(f"lock: {name} needs {group!r}, which {SUITE} does not have")
            todo.append(pick)
    return sorted(chosen)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("packages", help="packages.txt, relative to the workspace")
    parser.add_argument("lock", help="lock file to write, relative to the workspace")
    args = parser.parse_args()
    workspace = Path(os.environ.get("BUILD_WORKSPACE_DIRECTORY", "."))
    wanted = [
        line.split("#", 1)[0].strip()
        for line in (workspace / args.packages).read_text().splitlines()
        if line.split("#", 1)[0].strip()
    ]
    release = fetch(f"{MIRROR}/dists/{SUITE}/Release").decode()
    date = re.search(r"^Date: (.+)$", release, re.MULTILINE)[1]
    snapshot = email.utils.parsedate_to_datetime(date).strftime("%Y%m%dT%H%M%SZ")
    index = lzma.decompress(fetch(f"{MIRROR}/dists/{SUITE}/main/binary-{ARCH}/Packages.xz"))
    packages = parse_index(index.decode())
    locked = []
    for name in resolve(wanted, packages):
        fields = packages[name]
        locked.append(
            {
                "name": name,
                "version": fields["Version"],
                "sha256": fields["SHA256"],
                "urls": [
                    f"{SNAPSHOT}/{snapshot}/{fields['Filename']}",
                    f"{MIRROR}/{fields['Filename']}",
                ],
            }
        )
    lock = workspace / args.lock
    with tempfile.NamedTemporaryFile("w", dir=lock.parent, delete=False, suffix=".tmp") as out:
        json.dump(
            {"suite": SUITE, "arch": ARCH, "index_date": date, "packages": locked}, out, indent=2
        )
        out.write("\n")
    os.replace(out.name, lock)
    print(f"lock: {len(locked)} packages from {SUITE} ({date}) -> {lock}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
