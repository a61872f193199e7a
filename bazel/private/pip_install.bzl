"""The pip call both pip repository rules make: a hashed lock into `site-packages/`."""

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
