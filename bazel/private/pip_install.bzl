"""What both pip repository rules do: pin down the interpreter, and pip-install a hashed lock
into `site-packages/`, for the interpreter that runs pip or for another (the image's)."""

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
    into `site-packages/` of the repository (and pip's `install_report.json`); fails the fetch
    with pip's output."""
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
            # Which wheel file each distribution came from, with its sha256: what a test
            # compares to prove the tests and the image run the same wheels.
            "--report",
            "install_report.json",
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

def expand_manylinux(platforms):
    """pip takes --platform tags literally: manylinux_2_41 must list 2_40, ... 2_17 too."""
    expanded = []
    for platform in platforms:
        if not platform.startswith("manylinux_2_"):
            expanded.append(platform)
            continue
        minor, _, arch = platform[len("manylinux_2_"):].partition("_")
        for version in range(int(minor), 16, -1):
            expanded.append("manylinux_2_{}_{}".format(version, arch))
        expanded.append("manylinux2014_" + arch)
    return expanded

def pip_install_for_target(rctx, python, lock, filter_lock, python_version, platforms, roots = None):
    """Installs what `roots` need from `lock` (every pin when None) for CPython `python_version`
    on the Linux `platforms`, whatever Python runs pip: the lock is filtered by its markers for
    that target (`requirements.txt`), then installed with pip's target flags."""
    target = ["--platform=" + platform for platform in platforms]
    picks = ["--all"] if roots == None else ["--root=" + root for root in roots]
    result = rctx.execute([
        python,
        filter_lock,
        "--lock",
        str(lock),
        "--out",
        "requirements.txt",
        "--python_version",
        python_version,
    ] + target + picks)
    if result.return_code != 0:
        fail("{}: {}".format(rctx.name, result.stderr))
    platform_flags = []
    for platform in expand_manylinux(platforms):
        platform_flags += ["--platform", platform]
    pip_install(rctx, python, "requirements.txt", [
        "--python-version",
        python_version,
        "--implementation",
        "cp",
    ] + platform_flags)
