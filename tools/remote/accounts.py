"""Who the local remote service's parts run as, and the private files they get.

Started as root, no part keeps root: BuildGrid and its PostgreSQL run as one dedicated user,
casd, the workers and their actions as another (tools/bazelw/provision.sh makes both). Each
part's files live in directories only its user may enter, written whole (temp file, rename).
"""

from __future__ import annotations

import os
import pwd
import stat
from dataclasses import dataclass
from pathlib import Path

from tools.remote.credential_helper import SERVICE_USER  # BuildGrid and its PostgreSQL

# Started as root, the parts run as these users (tools/bazelw/provision.sh makes them).
WORKER_USER = "buildbox"  # casd, the workers, and the actions they run
# The environment of a part that runs as another user: nothing of the launcher's (it may hold
# credentials), which the actions running as that user could read.
CHILD_PATH = "/usr/local/bin:/usr/bin:/bin"


@dataclass(frozen=True)
class Account:
    """The user a part runs as; `switch` is false when that is this process's own user."""

    name: str
    uid: int
    gid: int
    switch: bool

    def own(self, path: Path) -> None:
        if self.switch:
            os.chown(path, self.uid, self.gid)


def accounts() -> tuple[Account, Account]:
    """The service's and the workers' users: dedicated ones as root, else the caller."""
    if os.geteuid() != 0:
        me = pwd.getpwuid(os.geteuid())
        caller = Account(me.pw_name, me.pw_uid, me.pw_gid, switch=False)
        return caller, caller
    found = []
    for name in (SERVICE_USER, WORKER_USER):
        try:
            entry = pwd.getpwnam(name)
        except KeyError:
            raise SystemExit(
                f"remote: as root, the service runs as the users {SERVICE_USER} and "
                f"{WORKER_USER}: there is no {name}; create it with `useradd --system "
                f"--user-group --no-create-home --shell /usr/sbin/nologin {name}` "
                "(./bazelw's root has both)"
            ) from None
        found.append(Account(name, entry.pw_uid, entry.pw_gid, switch=True))
    return found[0], found[1]


def private_dir(path: Path, owner: Account) -> Path:
    """A new directory only `owner` may enter."""
    path.mkdir(mode=0o700)
    owner.own(path)
    return path


def write_private(path: Path, text: str, owner: Account | None = None) -> None:
    """Writes a 0600 file whole: a temporary file, then a rename."""
    partial = path.with_name(path.name + ".partial")
    partial.unlink(missing_ok=True)
    descriptor = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w") as out:
        out.write(text)
    if owner:
        owner.own(partial)
    partial.replace(path)


def unreachable_by_others(path: Path) -> Path | None:
    """The first directory above `path` that other users may not enter, if any."""
    for parent in reversed(path.parents):
        if not parent.stat().st_mode & 0o001:
            return parent
    return None


def changeable_by_others(path: Path) -> Path | None:
    """The first entry on the way to `path` (absolute, links not yet followed) that another
    user could change, if any; entries not there yet are not checked (the caller makes them).

    A directory owned by a user other than root and this one, or writable by group or others:
    its owner or those could replace what it holds with links to files of their choosing, which
    the service would then write as root. A parent such as /tmp is accepted when sticky (others
    may add entries, not replace this one's), as the entry below it is then checked in turn. A
    link counts as its owner's, and where it points is checked the same way.
    """
    trusted = {0, os.geteuid()}
    entries = (*reversed(path.parents), path)
    for entry in entries:
        try:
            status = entry.lstat()
        except FileNotFoundError:
            return None
        if status.st_uid not in trusted:
            return entry
        if stat.S_ISLNK(status.st_mode):
            rest = path.relative_to(entry)
            return changeable_by_others(entry.resolve() / rest)
        if status.st_mode & 0o022 and (entry == path or not status.st_mode & stat.S_ISVTX):
            return entry
    return None


def make_private_dirs(path: Path) -> None:
    """Makes `path` (0700) and the directories missing above it (0755), whatever the umask;
    one that appears meanwhile, made by someone else, is refused (FileExistsError)."""
    missing = [entry for entry in (*reversed(path.parents), path) if not entry.exists()]
    for entry in missing:
        mode = 0o700 if entry == path else 0o755
        entry.mkdir(mode=mode)
        entry.chmod(mode)
