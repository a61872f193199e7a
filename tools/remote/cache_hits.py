"""Counts the remote cache hits of a build from its execution log, and explains each miss.

`./bazelw run //tools/remote:cache_hits -- SECOND.json [--first FIRST.json]` reads Bazel's
`--execution_log_json_file` of a build that should have found everything in the cache (another
clone, another output base) and prints `N remote cache hits of M actions`. Every miss is a
hermeticity bug: an action whose key differs between the two builds. Given the first build's log,
each miss is matched to the same action there (same target, mnemonic and outputs) and the
difference is printed: the command line, the environment, the platform, or which input files
differ, which is where the cause is. Actions that may not be cached at all (tagged no-remote,
no-remote-cache, no-cache, local) are listed apart, not counted.

Two kinds of miss are reported but are no hermeticity bug: one the first build never ran (its
output base already had the result, so it uploaded nothing), and one that failed in the first
build (Bazel uploads no failed result; a failed test is the first build's own failure to report).

Exit status: 0 when every cacheable action hit or missed only for that reason, 1 when some
action missed otherwise, 2 on unreadable input.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from pathlib import Path
from typing import Any

Spawn = dict[str, Any]
MAX_DIFFERENCES = 8  # per miss: enough to see the cause, not a wall of paths


def read_spawns(path: Path) -> list[Spawn]:
    """The log is a stream of JSON objects, one per spawn, not one JSON document."""
    decoder = json.JSONDecoder()
    text = path.read_text(encoding="utf-8")
    spawns, position = [], 0
    while True:
        while position < len(text) and text[position].isspace():
            position += 1
        if position == len(text):
            return spawns
        spawn, position = decoder.raw_decode(text, position)
        spawns.append(spawn)


def identity(spawn: Spawn) -> tuple[str, str, tuple[str, ...]]:
    return (
        spawn.get("targetLabel", ""),
        spawn.get("mnemonic", ""),
        tuple(sorted(spawn.get("listedOutputs", []))),
    )


def describe(spawn: Spawn) -> str:
    first_output = next(iter(spawn.get("listedOutputs", [])), "no outputs")
    return f"{spawn.get('mnemonic', '?')} {spawn.get('targetLabel', '?')} ({first_output})"


def differences(first: Spawn, second: Spawn) -> list[str]:
    """What makes the two spawns' action keys differ, most telling first."""
    found = []
    if first.get("commandArgs") != second.get("commandArgs"):
        a, b = first.get("commandArgs", []), second.get("commandArgs", [])
        for index, (x, y) in enumerate(zip(a, b, strict=False)):
            if x != y:
                found.append(f"argument {index}: {x!r} -> {y!r}")
        if len(a) != len(b):
            found.append(f"{len(a)} -> {len(b)} arguments")
    env = [
        {v["name"]: v["value"] for v in s.get("environmentVariables", [])} for s in (first, second)
    ]
    for name in sorted(env[0].keys() | env[1].keys()):
        if env[0].get(name) != env[1].get(name):
            found.append(f"environment {name}: {env[0].get(name)!r} -> {env[1].get(name)!r}")
    if first.get("platform") != second.get("platform"):
        found.append(f"platform: {first.get('platform')} -> {second.get('platform')}")
    inputs = [
        {i["path"]: i.get("digest", {}).get("hash", "") for i in s.get("inputs", [])}
        for s in (first, second)
    ]
    for path in sorted(inputs[0].keys() | inputs[1].keys()):
        if inputs[0].get(path) != inputs[1].get(path):
            before = inputs[0].get(path, "absent")[:12]
            after = inputs[1].get(path, "absent")[:12]
            found.append(f"input {path}: {before} -> {after}")
    return found or ["the same key parts in both logs (the first build did not upload it?)"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("second", type=Path, help="execution log of the build that should hit")
    parser.add_argument(
        "--first", type=Path, help="execution log of the build that filled the cache"
    )
    args = parser.parse_args()
    try:
        second = read_spawns(args.second)
        first = read_spawns(args.first) if args.first else []
    except (OSError, ValueError) as error:
        print(f"cache_hits: cannot read an execution log: {error}", file=sys.stderr)
        return 2

    cacheable = [s for s in second if s.get("remoteCacheable")]
    not_cacheable = [s for s in second if not s.get("remoteCacheable")]
    misses = [s for s in cacheable if not s.get("cacheHit")]
    print(f"{len(cacheable) - len(misses)} remote cache hits of {len(cacheable)} actions")

    if not_cacheable:
        kinds = Counter(s.get("mnemonic", "?") for s in not_cacheable)
        print(
            f"not cacheable by their tags, so run again: {len(not_cacheable)} "
            f"({', '.join(f'{n} {m}' for m, n in sorted(kinds.items()))})"
        )
        for spawn in sorted(not_cacheable, key=describe):
            print(f"  {describe(spawn)}")

    by_identity = {identity(s): s for s in first}
    unexplained = 0
    for spawn in misses:
        print(f"MISS {describe(spawn)}")
        earlier = by_identity.get(identity(spawn))
        if first and earlier is None:
            # The first build never ran it (its output base had the result already), so never
            # uploaded it: on a fresh CI machine this does not happen.
            print("  not run by the first build (its output base had it): not uploaded")
            continue
        if earlier is not None and (exit_code := earlier.get("exitCode", 0)):
            print(f"  failed in the first build (exit {exit_code}): not uploaded")
            continue
        unexplained += 1
        if earlier is None:
            print("  (pass --first to see why)")
            continue
        found = differences(earlier, spawn)
        for line in found[:MAX_DIFFERENCES]:
            print(f"  {line}")
        if len(found) > MAX_DIFFERENCES:
            print(f"  ... and {len(found) - MAX_DIFFERENCES} more differences")
    return 1 if unexplained else 0


if __name__ == "__main__":
    sys.exit(main())
