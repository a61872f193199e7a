"""Repository rule: the image's CPython, unpacked from the Debian lock, as the build's Python."""

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
    interpreter = "rootfs/" + rctx.attr.interpreter.lstrip("/")
    result = rctx.execute([rctx.path(interpreter), "-c", "import sys; print(sys.version)"])
    if result.return_code != 0:
        fail("{}: {} does not run here: {}".format(rctx.name, rctx.attr.interpreter, result.stderr))
    rctx.file("version.txt", result.stdout)
    rctx.file("BUILD.bazel", _BUILD.format(interpreter = interpreter))

_BUILD = """\
load("@rules_python//python:defs.bzl", "py_runtime", "py_runtime_pair")

exports_files(["version.txt"])

py_runtime(
    name = "runtime",
    files = glob(
        ["rootfs/usr/lib/python3*/**"],
        exclude = ["**/__pycache__/**", "**/test/**", "**/idlelib/**", "**/tkinter/**"],
    ),
    interpreter = "{interpreter}",
    python_version = "PY3",
    stub_shebang = "#!/usr/bin/env python3",
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
image ships. The shared libraries it links (libc, libssl, ...) are the machine's. The fetch
fails, with the loader's reason, where the machine cannot run it; `version.txt` records the
version it reported.""",
    attrs = {
        "lock": attr.label(mandatory = True, allow_single_file = [".json"], doc = "The Debian lock."),
        "packages": attr.string_list(
            mandatory = True,
            doc = "The lock's packages that make the interpreter and its standard library.",
        ),
        "interpreter": attr.string(mandatory = True, doc = "Its path in the image."),
    },
)
