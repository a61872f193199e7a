"""Resolves deploy/base/packages.txt against Debian's signed package indexes into
debs.lock.json: `./bazelw run //deploy/base:lock`.

The indexes are those of `trixie` and `trixie-updates` (deb.debian.org) and `trixie-security`
(security.debian.org); where a later suite has a newer version of a package (dpkg's version
order), that version wins, so published security fixes reach the image. Each suite's `InRelease`
is verified with `gpgv` against Debian's archive keyring, and its `Packages.xz` is checked
against the SHA256 list of the signed text before it is read: an index that does not verify
fails the lock with a one-line error and nothing is written.

Each package of the closure of `Depends` and `Pre-Depends` (first alternative that exists,
virtual packages through `Provides`) is pinned with version, the suite it came from, sha256 and
two URLs: the archive's pool first (current packages download from it without a fallback), and
snapshot.debian.org at the time of the suite's index second, so the lock keeps working after a
point release or a newer security update removes the version from the pool. Packages that only
make sense on a system with a shell and a package manager are left out (EXCLUDED): the image
has neither.

The package list has one package a line (`#` starts a comment). A line `!NAME` excludes NAME
from this lock only, on top of EXCLUDED: it is not locked, and neither is whatever only it
pulls in (a dependency that another locked package needs is still locked). Naming a package
both ways is an error. `./bazelw run //java/deps:lock` does the same for java/deps/packages.txt.
"""

from __future__ import annotations

import argparse
import datetime
import email.utils
import hashlib
import json
import lzma
import os
import subprocess
import sys
import tempfile
import urllib.request
from pathlib import Path

from debian.deb822 import Packages, PkgRelation, Release
from debian.debian_support import Version

MIRROR = "https://deb.debian.org/debian"
SNAPSHOT = "https://snapshot.debian.org/archive/debian"
SECURITY_MIRROR = "https://security.debian.org/debian-security"
SECURITY_SNAPSHOT = "https://snapshot.debian.org/archive/debian-security"
KEYRING = "/usr/share/keyrings/debian-archive-keyring.gpg"
SUITE = "trixie"
COMPONENT = "main"
ARCH = "amd64"
# The fields of a Packages stanza the lock reads; deb822 skips the rest (half the parse time).
INDEX_FIELDS = ["Package", "Version", "Filename", "SHA256", "Pre-Depends", "Depends", "Provides"]
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


class LockError(Exception):
    """A reason not to write the lock, printed as one line."""


def fetch(url: str) -> bytes:
    try:
        with urllib.request.urlopen(url, timeout=120) as response:
            return response.read()
    except OSError as error:
        raise LockError(f"cannot fetch {url}: {error}") from error


def verified_release(url: str, keyring: str) -> str:
    """The signed text of an InRelease file, if gpgv verifies it against keyring."""
    signed = fetch(url)
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "InRelease").write_bytes(signed)
        try:
            result = subprocess.run(
                ["gpgv", "--keyring", keyring, "--output", "Release", "InRelease"],
                cwd=tmp,
                capture_output=True,
                text=True,
            )
        except FileNotFoundError as error:
            raise LockError(f"gpgv is needed to verify {url}: {error}") from error
        if result.returncode != 0:
            reason = " ".join(
                line.removeprefix("gpgv: ").strip()
                for line in result.stderr.splitlines()
                if "BAD signature" in line or "No public key" in line or "no valid" in line
            )
            raise LockError(
                f"{url}: signature does not verify against {keyring}"
                + (f" ({reason})" if reason else "")
            )
        return (Path(tmp) / "Release").read_text()


def read_suite(
    mirror: str, suite: str, keyring: str, now: datetime.datetime
) -> tuple[str, dict[str, Packages]]:
    """(the Date of the suite's signed Release, its Packages) after checking both."""
    url = f"{mirror}/dists/{suite}/InRelease"
    # deb822 verifies no signature: it reads only the text gpgv has verified.
    release = Release(verified_release(url, keyring))
    codename = release.get("Codename")
    if codename != suite:
        raise LockError(f"{url}: signed Codename is {codename!r}, not {suite!r}")
    date = release.get("Date")
    if not date:
        raise LockError(f"{url}: signed Release has no Date")
    valid_until = release.get("Valid-Until")
    if valid_until and email.utils.parsedate_to_datetime(valid_until) < now:
        raise LockError(f"{url}: signed Release expired at {valid_until}")
    path = f"{COMPONENT}/binary-{ARCH}/Packages.xz"
    signed = next((entry for entry in release.get("SHA256", []) if entry.get("name") == path), None)
    if signed is None:
        raise LockError(f"{url}: signed Release lists no SHA256 for {path}")
    data = fetch(f"{mirror}/dists/{suite}/{path}")
    digest, size = signed["sha256"], int(signed["size"])
    if hashlib.sha256(data).hexdigest() != digest or len(data) != size:
        raise LockError(
            f"{mirror}/dists/{suite}/{path}: sha256 {hashlib.sha256(data).hexdigest()} "
            f"({len(data)} bytes) does not match the signed {digest} ({size} bytes)"
        )
    # apt_pkg is never used (it reads files only); a name listed twice keeps its last stanza.
    paragraphs = Packages.iter_paragraphs(
        lzma.decompress(data).decode(), fields=INDEX_FIELDS, use_apt_pkg=False
    )
    return date, {paragraph["Package"]: paragraph for paragraph in paragraphs}


def providers(packages: dict[str, Packages]) -> dict[str, list[str]]:
    provided: dict[str, list[str]] = {}
    for name, fields in sorted(packages.items()):
        for group in (
            PkgRelation.parse_relations(fields["Provides"]) if "Provides" in fields else []
        ):
            for relation in group:
                provided.setdefault(relation["name"], []).append(name)
    return provided


def resolve(
    wanted: list[str], packages: dict[str, Packages], excluded: frozenset[str] = frozenset()
) -> list[str]:
    """The closure of wanted, leaving out EXCLUDED, excluded and what only they pull in."""
    provided = providers(packages)
    if unknown := sorted(excluded - packages.keys() - provided.keys()):
        names = ", ".join(repr(name) for name in unknown)
        raise SystemExit(f"lock: excluded, but not in {SUITE}/{ARCH}: {names}")
    excluded = EXCLUDED | excluded
    chosen: set[str] = set()
    todo = list(wanted)
    while todo:
        name = todo.pop()
        if name in chosen or name in excluded:
            continue
        if name not in packages:
            raise SystemExit(f"lock: no package {name!r} in {SUITE}/{ARCH}")
        chosen.add(name)
        fields = packages[name]
        depends = ", ".join(fields[key] for key in ("Pre-Depends", "Depends") if key in fields)
        for group in PkgRelation.parse_relations(depends) if depends else []:
            alternatives = [relation["name"] for relation in group]
            if any(a in excluded or a in chosen for a in alternatives):
                continue
            pick = next((a for a in alternatives if a in packages), None)
            pick = pick or next((provided[a][0] for a in alternatives if a in provided), None)
            if pick is None:
                needs = PkgRelation.str([group])
                raise SystemExit(f"lock: {name} needs {needs!r}, which {SUITE} does not have")
            todo.append(pick)
    return sorted(chosen)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("packages", help="packages.txt, relative to the workspace")
    parser.add_argument("lock", help="lock file to write, relative to the workspace")
    parser.add_argument("--mirror", default=MIRROR, help="archive of trixie, trixie-updates")
    parser.add_argument("--snapshot", default=SNAPSHOT, help="its snapshot.debian.org archive")
    parser.add_argument("--security-mirror", default=SECURITY_MIRROR, help="of trixie-security")
    parser.add_argument("--security-snapshot", default=SECURITY_SNAPSHOT)
    parser.add_argument("--keyring", default=KEYRING, help="gpgv keyring of the archive keys")
    args = parser.parse_args()
    workspace = Path(os.environ.get("BUILD_WORKSPACE_DIRECTORY", "."))
    entries = [
        line.split("#", 1)[0].strip()
        for line in (workspace / args.packages).read_text().splitlines()
        if line.split("#", 1)[0].strip()
    ]
    wanted = [entry for entry in entries if not entry.startswith("!")]
    excluded = frozenset(entry[1:].strip() for entry in entries if entry.startswith("!"))
    if both := sorted(excluded.intersection(wanted)):
        print(f"lock: {args.packages} both wants and excludes {', '.join(both)}", file=sys.stderr)
        return 2
    # Later suites win where they are newer.
    archives = [
        (f"{SUITE}", args.mirror, args.snapshot),
        (f"{SUITE}-updates", args.mirror, args.snapshot),
        (f"{SUITE}-security", args.security_mirror, args.security_snapshot),
    ]
    now = datetime.datetime.now(datetime.UTC)
    suites: dict[str, dict[str, str]] = {}
    packages: dict[str, Packages] = {}
    origin: dict[str, str] = {}
    try:
        for suite, mirror, snapshot in archives:
            date, index = read_suite(mirror, suite, args.keyring, now)
            stamp = email.utils.parsedate_to_datetime(date).strftime("%Y%m%dT%H%M%SZ")
            suites[suite] = {"date": date, "pool": mirror, "snapshot": f"{snapshot}/{stamp}"}
            for name, fields in index.items():
                current = packages.get(name)
                if current and Version(fields["Version"]) <= Version(current["Version"]):
                    continue
                packages[name], origin[name] = fields, suite
    except LockError as error:
        print(f"lock: {error}; nothing written", file=sys.stderr)
        return 1
    locked = []
    for name in resolve(wanted, packages, excluded):
        fields = packages[name]
        suite = suites[origin[name]]
        locked.append(
            {
                "name": name,
                "version": fields["Version"],
                "suite": origin[name],
                "sha256": fields["SHA256"],
                "urls": [
                    f"{suite['pool']}/{fields['Filename']}",
                    f"{suite['snapshot']}/{fields['Filename']}",
                ],
            }
        )
    lock = workspace / args.lock
    document = {
        "suite": SUITE,
        "arch": ARCH,
        "suites": {name: {"date": s["date"]} for name, s in suites.items()},
        "packages": locked,
    }
    # A temporary file renamed over the lock: a reader sees the old lock or the new one.
    with tempfile.NamedTemporaryFile("w", dir=lock.parent, delete=False, suffix=".tmp") as out:
        try:
            json.dump(document, out, indent=2)
            out.write("\n")
        except BaseException:
            os.unlink(out.name)
            raise
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(out.name, 0o666 & ~umask)  # as open() would have made it, not mkstemp's 0600
    os.replace(out.name, lock)
    changed = sum(p["suite"] != SUITE for p in locked)
    print(f"lock: {len(locked)} packages ({changed} from updates/security) -> {lock}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
