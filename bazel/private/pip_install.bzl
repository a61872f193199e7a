"""What both pip repository rules do: pin down the interpreter, and pip-install a hashed lock
into `site-packages/`, for the interpreter that runs pip or for another (the image's)."""

_ABOUT_INTERPRETER = "import os, sys; print(os.path.realpath(sys.executable)); print(sys.version)"

def watch_interpreter(rctx, python):
    """Makes a change of the interpreter refetch the repository, and records which one it was.

    `interpreter.txt` gets the path on PATH, the file it runs, and its exact version.

    rctx.which is not watched: without this, a new Python (an upgrade in place, or python3
    pointing elsewhere) keeps the wheels installed for the old one. Watching both files makes
    Bazel compare their contents on every build, so a new version, a different binary behind
    the same name, or the symlink moved, refetches; a change of PATH does too (the rules list
    it in `environ`). The version is recorded, not compared: a new version comes with a new
    binary. Not seen: a launcher script (pyenv's shims) that picks another Python by itself.

    Fails the fetch if the interpreter does not run.

    Args:
      rctx: the repository rule's context.
      python: path of the interpreter, as rctx.which found it.
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
    """Runs `pip install --require-hashes` of wheels only into the repository's `site-packages/`.

    No dependencies beyond the lock's pins are installed, and no .pyc files written; pip's
    report goes to `install_report.json`. Fails the fetch with pip's output.

    Args:
      rctx: the repository rule's context.
      python: path of the interpreter that runs pip (and is installed for, unless
        `extra_args` name another target).
      requirements: path or string: the hashed requirements file, relative to the repository
        or absolute.
      extra_args: list of further pip arguments, e.g. the target flags of
        pip_install_for_target.
    """
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
    """Expands each manylinux_2_N tag into every older one pip should accept.

    pip takes --platform tags literally: manylinux_2_41 must list 2_40, ... 2_17 too, and
    manylinux2014 (the same as 2_17) under its legacy name.

    Args:
      platforms: list of pip --platform tags, e.g. `manylinux_2_41_x86_64`.

    Returns:
      List of tags: the other tags as they are, and each manylinux_2_N_ARCH as
      manylinux_2_N_ARCH down to manylinux_2_17_ARCH followed by manylinux2014_ARCH.
    """
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
    """Installs what `roots` need from `lock` for another CPython and Linux platform.

    This works whatever Python runs pip: the lock is filtered by its markers for that target (into
    `requirements.txt` in the repository), then installed with pip's target flags. Fails the
    fetch if filtering or pip fails.

    Args:
      rctx: the repository rule's context.
      python: path of the interpreter that runs filter_lock and pip.
      lock: path of the hashed requirements lock.
      filter_lock: path of filter_lock.py, which writes the pins for the target.
      python_version: string: the target CPython, e.g. `3.13`.
      platforms: list of pip --platform tags, all Linux; manylinux_2_N stands for itself and
        every older one.
      roots: list of distribution names to install with what they need, or None for every pin.
    """
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
