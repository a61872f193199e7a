"""Repository rule: part of a requirements lock, installed for another platform (the image's)."""

load(":pip_install.bzl", "pip_install_for_target", "watch_interpreter")

def _pip_target_repository_impl(rctx):
    python = rctx.which("python3")
    if not python:
        fail("{}: no python3 on PATH to run pip with".format(rctx.name))
    watch_interpreter(rctx, python)
    lock = rctx.path(rctx.attr.requirements_lock)

    # Watched: a change to the parser or the BUILD writers refetches.
    rctx.path(rctx.attr._lock_file)
    rctx.path(rctx.attr._write_hub_build_files)
    rctx.report_progress("pip install for " + ", ".join(rctx.attr.platforms))
    pip_install_for_target(
        rctx,
        python,
        lock,
        rctx.path(rctx.attr._filter_lock),
        rctx.attr.python_version,
        rctx.attr.platforms,
        rctx.attr.roots or None,
    )
    result = rctx.execute([
        python,
        rctx.path(rctx.attr._write_build_file),
        "--lock",
        str(lock),
        "--lock_label",
        str(rctx.attr.requirements_lock).removeprefix("@@"),
        "--site_packages",
        "site-packages",
        "--rules",
        str(Label("//bazel/private:pip_image_packages.bzl")),
    ])
    if result.return_code != 0:
        fail("{}: {}".format(rctx.name, result.stderr))

pip_target_repository = repository_rule(
    implementation = _pip_target_repository_impl,
    doc = """Installs a lock (or what `roots` need: their closure from its `# via` annotations)
with `pip --require-hashes` for a target interpreter and platform, whatever Python runs the
build. For container images: the lock is the one the build uses, so the image runs the versions
the tests ran. Pins whose environment marker excludes the target (CPython `python_version` on
Linux) are left out, with what only they need; `requirements.txt` in the repository lists both.

`:packages` (pip_image_packages) describes each installed distribution (its files, version and
what it needs) for py_packages_layer, which puts a binary's own closure in its image. The
build's Python runs pip: a change of it
(its file, or PATH) refetches; `interpreter.txt` says which one it was.""",
    attrs = {
        "requirements_lock": attr.label(mandatory = True, allow_single_file = True),
        "roots": attr.string_list(
            doc = "Distributions to install, with what they need; default: every pin. Each " +
                  "image takes only what its binary needs from them.",
        ),
        "python_version": attr.string(mandatory = True, doc = "Target CPython, e.g. `3.13`."),
        "platforms": attr.string_list(
            mandatory = True,
            doc = "pip --platform tags, all Linux, of one machine; manylinux_2_N stands for " +
                  "itself and every older one.",
        ),
        "_filter_lock": attr.label(default = "//bazel/private:filter_lock.py", allow_single_file = True),
        "_lock_file": attr.label(default = "//bazel/private:lock_file.py", allow_single_file = True),
        "_write_build_file": attr.label(
            default = "//bazel/private:write_target_build_file.py",
            allow_single_file = True,
        ),
        "_write_hub_build_files": attr.label(
            default = "//bazel/private:write_hub_build_files.py",
            allow_single_file = True,
        ),
    },
    environ = ["PATH"],
)
