#!/usr/bin/env python3
"""Bazel's credential helper for the local remote service: its client token, from a 0600 file.

//tools/remote:local refuses requests without a token, so that another user of the machine can
neither read nor write its cache nor run actions. It writes the token to DIR/token (DIR is
$XDG_CACHE_HOME/remote-local, or ~/.cache/remote-local), readable only by whoever started it;
.bazelrc names this helper for 127.0.0.1, so Bazel sends the token as an Authorization header
and it never appears on a command line or in a log. Bazel runs it as `credential_helper.py get`
with {"uri": ...} on stdin; it answers {"headers": {"Authorization": ["Bearer TOKEN"]}}.
It uses only the standard library: Bazel runs it from the source tree, with the machine's python3.

A loopback port proves nothing about who listens on it: another local user who binds the port
first (before the service starts, or after it stops) would be sent the token, and could then use
the service as its owner. So the token goes only to a port whose listening sockets all belong to
the service's user: this user, or, for root, the user the service runs BuildGrid as
(tools/remote/accounts.py), read from the kernel's socket table (/proc/net/tcp, tcp6).
"""

from __future__ import annotations

import contextlib
import json
import os
import pwd
import sys
import urllib.parse
from pathlib import Path

TOKEN_FILE = "token"  # the client token, in the token directory
# Started as root, the service runs BuildGrid as this user (tools/remote/accounts.py).
SERVICE_USER = "buildgrid"
_LISTEN = "0A"  # a listening socket's state in /proc/net/tcp
# Local addresses (as /proc/net/tcp* spells them) a client of 127.0.0.1 may reach: the
# loopback address itself, and the wildcard addresses of IPv4 and IPv6.
_REACHABLE_FROM_LOOPBACK = frozenset(
    {
        "0100007F",  # 127.0.0.1
        "00000000",  # 0.0.0.0
        "00000000000000000000000000000000",  # ::
        "0000000000000000FFFF00000100007F",  # ::ffff:127.0.0.1
    }
)


def default_token_dir() -> Path:
    cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache) / "remote-local"


def listener_uids(port: int) -> set[int]:
    """The users owning the sockets that listen on `port` where 127.0.0.1's clients reach."""
    owners = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except FileNotFoundError:  # no IPv6
            continue
        for line in lines:
            fields = line.split()
            address, _, hex_port = fields[1].partition(":")
            if (
                fields[3] == _LISTEN
                and int(hex_port, 16) == port
                and address in _REACHABLE_FROM_LOOPBACK
            ):
                owners.add(int(fields[7]))
    return owners


def service_uids() -> set[int]:
    """Who may own the service's port: this user, and as root the service's own user."""
    uids = {os.geteuid()}
    if os.geteuid() == 0:
        # Without that user the service cannot run as root here either (accounts.py).
        with contextlib.suppress(KeyError):
            uids.add(pwd.getpwnam(SERVICE_USER).pw_uid)
    return uids


def foreign_listener(port: int) -> str | None:
    """Why the token must not go to 127.0.0.1:`port`, or None when only the service listens."""
    owners = listener_uids(port)
    if not owners:
        return f"nothing listens on 127.0.0.1:{port}"
    foreign = owners - service_uids()
    if foreign:
        return (
            f"127.0.0.1:{port} is held by uid {', '.join(map(str, sorted(foreign)))}, "
            "not by the service's user"
        )
    return None


def main() -> int:
    if sys.argv[1:] != ["get"]:
        print("usage: credential_helper.py get  (the request on stdin)", file=sys.stderr)
        return 2
    uri = json.load(sys.stdin).get("uri", "")
    try:
        port = urllib.parse.urlsplit(uri).port
    except ValueError:
        port = None
    if port is None:
        print(f"remote-local: no port in {uri!r}: no token sent", file=sys.stderr)
        return 1
    if why := foreign_listener(port):
        print(f"remote-local: {why}: no token sent", file=sys.stderr)
        return 1
    token_file = default_token_dir() / TOKEN_FILE
    try:
        token = token_file.read_text().strip()
    except OSError as error:
        print(
            f"remote-local: no client token for {uri} ({token_file}: {error.strerror}); "
            "start ./bazelw run //tools/remote:local as this user",
            file=sys.stderr,
        )
        return 1
    json.dump({"headers": {"Authorization": [f"Bearer {token}"]}}, sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
