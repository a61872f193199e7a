"""Fails when a kit target outside the samples depends on a sample (issue 25, point 7).

Deleting a sample (python/services/ping or route_guide, its proto package, its lines in
deploy/BUILD.bazel) must leave every other target analysable. A dependency edge into a deleted
package is exactly what breaks analysis, so one `bazel query rdeps` over the kit's targets finds
them all in seconds, with no second copy of the repository and no second Bazel server. Kept out
of the universe: the samples themselves, //deploy (the user's own service list, with its test
of `bazel run //deploy:local`, which releases them), //python/server (the quick start's alias of
one of the user's services: deleting that service means pointing it at another, as its line in
//deploy is deleted). The Java client (//java/client) is the kit's part only, its tests
(tests/java) run on the kit's test service, and each sample's Java commands and their tests sit
in the sample (python/services/ping/java), so both are checked, as are the release tool's tests
(tests/release) and the local Cloud Run's (tests/cloud_run). KNOWN lists what still
depends on a sample; a new one fails, and so does a listed one that no longer depends (strike it
off), so the list only shrinks.

Run from the workspace root: `python3 tools/sample_free/check.py`.
"""

from __future__ import annotations

import pathlib
import subprocess
import sys

SAMPLES = (
    "//python/services/ping/...:*",
    "//python/services/route_guide/...:*",
    "//proto/ping/...:*",
    "//proto/routeguide/...:*",
)
OUTSIDE = (
    *SAMPLES,
    "//deploy/...",
    "//python/server/...",
)
KNOWN = pathlib.Path(__file__).with_name("known.txt")
# `--keep_going` because the offline external repositories lack targets (protoc, zlib) that no
# kit target here reaches; exit 3 is that partial load, any other failure is a failure.
PARTIAL_LOAD = 3


def dependents() -> set[str]:
    universe = " - ".join(("//...", *OUTSIDE))
    expression = f"rdeps({universe}, {' + '.join(SAMPLES)}) - ({' + '.join(OUTSIDE)})"
    result = subprocess.run(
        ["./bazelw", "query", "--keep_going", "--noimplicit_deps", expression],
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode not in (0, PARTIAL_LOAD):
        sys.exit(f"bazel query failed ({result.returncode}):\n{result.stderr}")
    return set(result.stdout.split())


def known() -> set[str]:
    lines = (line.split("#")[0].strip() for line in KNOWN.read_text().splitlines())
    return {line for line in lines if line}


def main() -> int:
    found, listed = dependents(), known()
    for target in sorted(found - listed):
        print(f"depends on a sample: {target}")
    for target in sorted(listed - found):
        print(f"no longer depends on a sample, strike it from {KNOWN.name}: {target}")
    print(f"{len(found)} targets depend on a sample ({len(listed)} known)")
    return 0 if found == listed else 1


if __name__ == "__main__":
    sys.exit(main())
