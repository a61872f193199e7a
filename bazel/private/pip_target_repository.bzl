"""Repository rule: part of a requirements lock, installed for another platform (the image's)."""

load(":pip_install.bzl", "pip_install_for_target", "watch_interpreter")

def _pip_target_repository_impl(rctx):
    python = rctx.which("python3")
    if not python:
        fail("{}: no python3 on PATH to run pip with".format(rctx.name))
    watch_interpreter(rctx, python)
    lock = rctx.path(rctx.attr.requirements_lock)
    rctx.path(rctx.attr._lock_file)  # watched: a change to the parser refetches
    rctx.report_progress("pip install for " + ", ".join(rctx.attr.platforms))
    pip_install_for_target(
        rctx,
        python,
        lock,
        rctx.path(rctx.attr._filter_lock),
        rctx.attr.python_version,
        rctx.attr.platforms,
        rctx.attr.roots,
    )
    rctx.file("BUILD.bazel", """\
exports_files(["install_report.json"])

filegroup(
    name = "site_packages",
    srcs = glob(["site-packages/**"], exclude = ["**/__pycache__/**"]),
    visibility = ["//visibility:public"],
)
""")

pip_target_repository = repository_rule(
    implementation = _pip_target_repository_impl,
    doc = """Installs the distributions `roots` need (their closure in the lock, from its `# via`
annotations) with `pip --require-hashes` for a target interpreter and platform, whatever Python
runs the build, and exposes them as `:site_packages`. For container images: the lock is the
one the build uses, so the image runs the versions the tests ran. Pins whose environment marker
excludes the target (CPython `python_version` on Linux) are left out, with what only they need;
`requirements.txt` in the repository lists both. The build's Python runs pip: a change of it
(its file, or PATH) refetches; `interpreter.txt` says which one it was.""",
    attrs = {
        "requirements_lock": attr.label(mandatory = True, allow_single_file = True),
        "roots": attr.string_list(
            mandatory = True,
            doc = "Distributions the image's code imports; what they need comes along.",
        ),
        "python_version": attr.string(mandatory = True, doc = "Target CPython, e.g. `3.13`."),
        "platforms": attr.string_list(
            mandatory = True,
            doc = "pip --platform tags, all Linux, of one machine; manylinux_2_N stands for " +
                  "itself and every older one.",
        ),
        "_filter_lock": attr.label(default = "//bazel/private:filter_lock.py", allow_single_file = True),
        "_lock_file": attr.label(default = "//bazel/private:lock_file.py", allow_single_file = True),
    },
    environ = ["PATH"],
)
