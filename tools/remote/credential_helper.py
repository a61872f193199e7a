#!/usr/bin/env python3
"""Bazel's credential helper for the local remote service: its client token, from a 0600 file.

//tools/remote:local refuses requests without a token, so that another user of the machine can
neither read nor write its cache nor run actions. It writes the token to DIR/token (DIR is
$XDG_CACHE_HOME/remote-local, or ~/.cache/remote-local), readable only by whoever started it;
.bazelrc names this helper for 127.0.0.1, so Bazel sends the token as an Authorization header
and it never appears on a command line or in a log. Bazel runs it as `credential_helper.py get`
with {"uri": ...} on stdin; it answers {"headers": {"Authorization": ["Bearer TOKEN"]}}.
It uses only the standard library: Bazel runs it from the source tree, with the machine's python3.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

TOKEN_FILE = "token"  # the client token, in the token directory


def default_token_dir() -> Path:
    cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache) / "remote-local"


def main() -> int:
    if sys.argv[1:] != ["get"]:
        print("usage: credential_helper.py get  (the request on stdin)", file=sys.stderr)
        return 2
    uri = json.load(sys.stdin).get("uri", "")
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
