"""`./bazelw run //tools/new_service -- NAME`: a new gRPC service for Cloud Run, working and
tested, in this workspace.

It writes the proto package proto/NAME/v1 (one SayHello method, Python and Java targets),
python/services/NAME (servicer, main, BUILD and a test that starts the real server) and the
service's entry in deploy/BUILD.bazel, with NAME's hyphens as underscores (names.py). Then
`./bazelw test //python/services/NAME:all` passes and `./bazelw build //deploy:NAME` builds its
image, manifest and SBOM; what is left to write is the service's own methods.

Exit 0 with the files written; 2 on a bad or taken name, with one line and nothing written; 1
when a file cannot be written, with nothing written either (files.py).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from tools.new_service import names, python_format, scaffold
from tools.new_service.files import WriteError, write_all

EXIT_FAILED = 1
EXIT_USAGE = 2
USAGE = "usage: ./bazelw run //tools/new_service -- NAME  (the Cloud Run name, e.g. order-history)"


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        return fail(USAGE, EXIT_USAGE)
    workspace = os.environ.get("BUILD_WORKSPACE_DIRECTORY")
    if not workspace:
        return fail(f"no workspace: {USAGE}", EXIT_USAGE)
    try:
        service = names.parse(argv[1])
        files = python_format.formatted(Path(workspace), scaffold.plan(Path(workspace), service))
    except (names.BadName, scaffold.Taken) as error:
        return fail(str(error), EXIT_USAGE)
    except (scaffold.LayoutError, python_format.FormatError) as error:
        return fail(str(error), EXIT_FAILED)
    try:
        write_all(Path(workspace), files)
    except WriteError as error:
        return fail(f"{error}; nothing was written", EXIT_FAILED)
    for file in files:
        print(f"wrote {file.path}")
    print(f"next: ./bazelw test //python/services/{service.bazel}:all")
    return 0


def fail(message: str, code: int) -> int:
    print(f"new_service: {message}", file=sys.stderr)
    return code


if __name__ == "__main__":
    sys.exit(main(sys.argv))
