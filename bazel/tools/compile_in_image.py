"""Run by the image's interpreter (see bytecode.py): `compile_in_image.py OUT < JOBS.json`.

JOBS maps each source's path in the image (relative to `/`) to the file to read. Each file is
compiled in a child forked from this process before it compiled anything: marshal's output
depends on the interpreter's state (which strings are interned and referenced elsewhere
decides its back-references), so compiling files one after another in one process would make
a file's .pyc depend on which files went before it. Standard library only, and nothing the
image's Python lacks.
"""

import importlib.util
import json
import os
import py_compile
import sys


def compile_one(source: str, image_path: str, out: str) -> None:
    py_compile.compile(
        source,
        cfile=out + importlib.util.cache_from_source(image_path),
        dfile=image_path,
        doraise=True,
        invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH,
    )


def main() -> int:
    out = sys.argv[1]
    jobs = json.load(sys.stdin)
    failures = []
    for path in sorted(jobs):
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:
            try:
                compile_one(jobs[path], "/" + path, out)
            except py_compile.PyCompileError as error:
                print(f"/{path}: {error.msg}", file=sys.stderr)
                os._exit(1)
            except BaseException as error:  # any failure is reported, and the child exits
                print(f"/{path}: {error!r}", file=sys.stderr)
                os._exit(1)
            sys.stderr.flush()
            os._exit(0)
        _, status = os.waitpid(pid, 0)
        if os.waitstatus_to_exitcode(status) != 0:
            failures.append(path)
    if failures:
        print(f"{len(failures)} file(s) failed to compile", file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
