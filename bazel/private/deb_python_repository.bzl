"""Repository rule: the image's CPython, unpacked from the Debian lock, as the build's Python.

Debian 13's python3.13 needs glibc 2.38 or newer, more than many build machines have (Debian 12,
Ubuntu 22.04, RHEL 9). So it never runs on the machine's loader: a launcher next to it runs it on
the image's own loader with the image's shared libraries (glibc, libssl, libexpat, ...), as in
the container. `ld.so --argv0` hands CPython the launcher's path as argv[0], so `sys.executable`
is the launcher and a subprocess of it (a test running `sys.executable`, multiprocessing's spawn)
goes through the launcher again. `--library-path`, unlike LD_LIBRARY_PATH, is no environment
variable: the programs Python starts (a shell, git, a JDK) keep the machine's own libraries.
"""

load(":deb_unpack.bzl", "unpack_deb")

def _deb_python_repository_impl(rctx):
    lock = json.decode(rctx.read(rctx.path(rctx.attr.lock)))
    by_name = {package["name"]: package for package in lock["packages"]}
    for name in rctx.attr.packages:
        if name not in by_name:
            fail("{}: {} is not in {}".format(rctx.name, name, rctx.attr.lock))
        rctx.report_progress("Unpacking " + name)

        # The image's own bytes: same URLs and sha256 as its base layer (repository cache).
        unpack_deb(rctx, by_name[name], "rootfs")
    for path in (rctx.attr.interpreter, rctx.attr.library_path):
        if not path.startswith("/"):
            fail("{}: {} is not an absolute path in the image".format(rctx.name, path))
    interpreter = "rootfs" + rctx.attr.interpreter
    library_path = "rootfs" + rctx.attr.library_path
    for path in (interpreter, library_path + "/" + rctx.attr.loader):
        if not rctx.path(path).exists:
            fail("{}: {} is in none of {}".format(rctx.name, path, rctx.attr.packages))

    # Next to the interpreter: CPython finds its standard library from argv[0]'s directory.
    launcher = interpreter.rpartition("/")[0] + "/" + _LAUNCHER_NAME
    if rctx.path(launcher).exists:
        fail("{}: the packages have a {} of their own; the launcher needs that name".format(
            rctx.name,
            launcher,
        ))
    rctx.file(launcher, _LAUNCHER.format(
        image_interpreter = rctx.attr.interpreter,
        interpreter = interpreter,
        library_path = library_path,
        loader = rctx.attr.loader,
    ))
    _compile_standard_library(rctx, launcher)
    result = rctx.execute([rctx.path(launcher), "-c", "import sys; print(sys.version)"])
    if result.return_code != 0:
        fail("{}: {} does not run here: {}".format(rctx.name, rctx.attr.interpreter, result.stderr))
    rctx.file("version.txt", result.stdout)
    rctx.file("BUILD.bazel", _BUILD.format(
        interpreter = interpreter,
        launcher = launcher,
        library_path = library_path,
    ))

# The standard library's directories that the toolchain leaves out (the _BUILD glob).
_NOT_IN_TOOLCHAIN = ("/test/", "/idlelib/", "/tkinter/")

def _compile_standard_library(rctx, launcher):
    """Writes the .pyc of each standard-library module the toolchain ships, beside it.

    A test's processes cannot keep the .pyc they write (the sandbox), so without these each
    one compiles every module it imports again. compile_in_image.py (as for the image's layers)
    makes them byte-identical from fetch to fetch; `unchecked-hash`: the interpreter never
    rewrites them. First, before anything else runs the interpreter and writes .pyc of its own.
    """
    found = rctx.execute(["find", "rootfs/usr/lib", "-path", "*/python3*", "-name", "*.py"])
    if found.return_code != 0:
        fail("{}: {}".format(rctx.name, found.stderr))
    jobs = {}
    for path in found.stdout.splitlines():
        if not any([part in path for part in _NOT_IN_TOOLCHAIN]):
            jobs[path[len("rootfs/"):]] = str(rctx.path(path))
    rctx.file("stdlib_jobs.json", json.encode(jobs))
    result = rctx.execute(
        [
            "sh",
            "-c",
            '"$0" -S -P "$1" "$2" < "$3"',
            rctx.path(launcher),
            rctx.path(rctx.attr._compiler),
            rctx.path("rootfs"),
            rctx.path("stdlib_jobs.json"),
        ],
        environment = {
            "PYTHONHASHSEED": "0",
            "PYTHONDONTWRITEBYTECODE": "1",
            "PYTHONNOUSERSITE": "1",
            "PYTHONWARNINGS": "ignore",
            "LC_ALL": "C.UTF-8",
        },
    )
    if result.return_code != 0:
        fail("{}: compiling the standard library failed: {}".format(rctx.name, result.stderr))
    rctx.delete("stdlib_jobs.json")

_LAUNCHER_NAME = "python3"

# The launcher, found through its symlinks (a runfiles tree, a venv's bin/python) to the
# repository's own tree; argv[0] stays the path it was started by, as for a plain python3.
# --library-path replaces LD_LIBRARY_PATH for this process, so it leads, as it would in the
# container, with the image's libraries where the container's loader has its own directories.
_LAUNCHER = """\
#!/bin/sh
# The image's {image_interpreter} on the image's loader and libraries (deb_python_repository).
self=$(readlink -f -- "$0") || exit 127
repository=${{self%/rootfs/*}}
exec "$repository/{library_path}/{loader}" --argv0 "$0" \\
  --library-path "${{LD_LIBRARY_PATH:+$LD_LIBRARY_PATH:}}$repository/{library_path}" \\
  "$repository/{interpreter}" "$@"
"""

_BUILD = """\
load("@rules_python//python:defs.bzl", "py_runtime", "py_runtime_pair")

exports_files(["version.txt"])

py_runtime(
    name = "runtime",
    files = ["{interpreter}"] + glob(
        ["rootfs/usr/lib/python3*/**"],
        # Only the bytecode the fetch compiled; none a process wrote.
        exclude = [
            "**/__pycache__/*.opt-*.pyc",
            "**/test/**",
            "**/idlelib/**",
            "**/tkinter/**",
        ],
    ) + glob(["{library_path}/*.so*"]),
    interpreter = "{launcher}",
    python_version = "PY3",
    # The stub only finds the runfiles and execs the launcher: the machine's python3 runs it with
    # no site (-S: no .pth hook of the machine's) and isolated (-I: no PYTHONPATH), so nothing
    # of the machine's Python imports, or writes to, the packages of the runfiles it is handed.
    stub_shebang = "#!/usr/bin/env -S python3 -S -I",
)

py_runtime_pair(
    name = "runtime_pair",
    py3_runtime = ":runtime",
)

toolchain(
    name = "toolchain",
    toolchain = ":runtime_pair",
    toolchain_type = "@bazel_tools//tools/python:toolchain_type",
)
"""

deb_python_repository = repository_rule(
    implementation = _deb_python_repository_impl,
    doc = """The CPython of a Debian lock (the image's base) unpacked, with a Python toolchain
(`:toolchain`) that runs it, so that tests run on the interpreter and standard library that the
image ships, on the image's own loader and shared libraries (libc, libssl, libexpat, ...), so
any Linux x86_64 machine runs it whatever its glibc. The toolchain's interpreter is a launcher,
`python3` next to the interpreter, which is also `sys.executable`. The fetch fails, with the
reason, where the machine cannot run it; `version.txt` records the version it reported.""",
    attrs = {
        "lock": attr.label(mandatory = True, allow_single_file = [".json"], doc = "The Debian lock."),
        "packages": attr.string_list(
            mandatory = True,
            doc = "The lock's packages that make the interpreter, its standard library, the " +
                  "loader and the shared libraries they load.",
        ),
        "interpreter": attr.string(mandatory = True, doc = "Its path in the image."),
        "library_path": attr.string(
            mandatory = True,
            doc = "The image's directory of shared libraries, e.g. /usr/lib/x86_64-linux-gnu.",
        ),
        "loader": attr.string(
            mandatory = True,
            doc = "The image's dynamic loader in `library_path`, e.g. ld-linux-x86-64.so.2.",
        ),
        "_compiler": attr.label(
            default = "//bazel/tools:compile_in_image.py",
            allow_single_file = True,
        ),
    },
)
