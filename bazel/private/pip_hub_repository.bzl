"""Repository rule: a requirements lock installed with pip, one py_library per distribution."""

load(":pip_install.bzl", "pip_install", "pip_install_for_target", "watch_interpreter")

def _pip_hub_repository_impl(rctx):
    python = rctx.which(rctx.attr.python_interpreter)
    if not python:
        fail("pip hub '{}': no '{}' on PATH to install the lock with".format(
            rctx.name,
            rctx.attr.python_interpreter,
        ))
    watch_interpreter(rctx, python)
    lock = rctx.path(rctx.attr.requirements_lock)
    rctx.path(rctx.attr._lock_file)  # watched: a change to the parser refetches the hub
    rctx.report_progress("pip install --require-hashes -r {}".format(rctx.attr.requirements_lock))
    if rctx.attr.python_version:
        pip_install_for_target(
            rctx,
            python,
            lock,
            rctx.path(rctx.attr._filter_lock),
            rctx.attr.python_version,
            rctx.attr.platforms,
        )
    else:
        pip_install(rctx, python, lock)

    # Installed for the toolchain's CPython (python_version): its bytecode too, so that no
    # process of a test compiles the packages it imports (py_bytecode.bzl).
    bytecode = []
    if rctx.attr.python_version:
        bytecode = ["--cache_tag", "cpython-" + rctx.attr.python_version.replace(".", "")]
    result = rctx.execute([
        python,
        rctx.path(rctx.attr._write_hub_build_files),
        "--lock",
        str(lock),
        "--site_packages",
        "site-packages",
        "--rules_python",
        "@rules_python//python:defs.bzl",
        "--py_bytecode",
        str(Label("//bazel/private:py_bytecode.bzl")),
    ] + bytecode)
    if result.return_code != 0:
        fail("pip hub '{}': {}".format(rctx.name, result.stderr))

pip_hub_repository = repository_rule(
    implementation = _pip_hub_repository_impl,
    doc = """Installs a hashed requirements lock with pip (`--require-hashes`, wheels only) into
`site-packages/` and writes one `py_library` per locked distribution, in a package of its own
named like rules_python's hubs (`@hub//google_auth`), depending on the distributions the lock
says it needs (its `# via` annotations). A distribution whose environment marker excludes this
platform gets an empty library, so labels stay valid everywhere. A change of the interpreter
(its file, or PATH) refetches; `interpreter.txt` says which one installed the lock.""",
    attrs = {
        "requirements_lock": attr.label(
            mandatory = True,
            allow_single_file = True,
            doc = "Lock file: `name==version` pins with `--hash` lines and `# via` annotations.",
        ),
        "python_interpreter": attr.string(
            default = "python3",
            doc = "Interpreter, found on PATH, that runs pip.",
        ),
        "python_version": attr.string(
            doc = "CPython to install for, e.g. `3.13`, when it is not the one running pip " +
                  "(the build's toolchain is another interpreter); with `platforms`.",
        ),
        "platforms": attr.string_list(
            doc = "pip --platform tags for `python_version`.",
        ),
        "_filter_lock": attr.label(
            default = "//bazel/private:filter_lock.py",
            allow_single_file = True,
        ),
        "_write_hub_build_files": attr.label(
            default = "//bazel/private:write_hub_build_files.py",
            allow_single_file = True,
        ),
        "_lock_file": attr.label(
            default = "//bazel/private:lock_file.py",
            allow_single_file = True,
        ),
    },
    environ = ["PATH", "PIP_INDEX_URL", "PIP_EXTRA_INDEX_URL", "PIP_FIND_LINKS", "PIP_CERT"],
)
