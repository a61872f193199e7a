"""A busy loop in a process of its own, to run a test's calls on a loaded machine: the load a
newcomer's first `bazel test //...` puts beside them, on purpose and every run."""

from __future__ import annotations

import contextlib
import subprocess
import sys
from collections.abc import Iterator


@contextlib.contextmanager
def cpu_hog() -> Iterator[None]:
    """One core's worth of busy loop for the length of the `with` block."""
    hog = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        yield
    finally:
        hog.kill()
        hog.wait()
