"""What both pip repository rules do: pin down the interpreter, and pip-install a hashed lock
into `site-packages/`."""

_ABOUT_INTERPRETER = "import os, sys; print(os.path.realpath(sys.executable)); print(sys.version)"

def watch_interpreter(rctx, python):
    """Makes a change of the interpreter `python` (what rctx.which found) refetch the repository,
    and records which one it was in `interpreter.txt`: the path on PATH, the file it runs, and
    its exact version.

    rctx.which is not watched: without this, a new Python (an upgrade in place, or python3
    pointing elsewhere) keeps the wheels installed for the old one. Watching both files makes
    Bazel compare their contents on every build, so a new version, a different binary behind
    the same name, or the symlink moved, refetches; a change of PATH does too (the rules list
    it in `environ`). The version is recorded, not compared: a new version comes with a new
    binary. Not seen: a launcher script (pyenv's shims) that picks another Python by itself.
    """
    result = rctx.execute([python, "-c", _ABOUT_INTERPRETER])
    if result.return_code != 0:
        fail("{}: {} does not run: {}".format(rctx.name, python, result.stderr))
    executable, version = result.stdout.strip().split("\n", 1)
    rctx.watch(python)
    rctx.watch(executable)
    rctx.file("interpreter.txt", "path: {}\nexecutable: {}\nversion: {}\n".format(
        python,
        executable,
        version.replace("\n", " "),
    ))

def pip_install(rctx, python, requirements, extra_args = []):
    """`pip install --require-hashes` of wheels only, no dependencies beyond the lock's pins,
    into `site-packages/` of the repository; fails the fetch with pip's output."""
    result = rctx.execute(
        [
            python,
            "-m",
            "pip",
            "install",
            "--no-deps",
            "--require-hashes",
            "--only-binary=:all:",
            # No .pyc files: they would embed timestamps and make the repository differ per run.
            "--no-compile",
            "--disable-pip-version-check",
            "--quiet",
            "--target",
            "site-packages",
            "--requirement",
            str(requirements),
        ] + extra_args,
        timeout = 1800,
    )
    if result.return_code != 0:
        fail("{}: pip could not install {}:\n{}{}".format(
            rctx.name,
            requirements,
            result.stdout,
            result.stderr,
        ))
