"""Images pulled and unpacked once per digest, shared by every revision that runs them: a
revision that only changes env or traffic starts in the time its server takes, not the time
an unpack takes. Each root is mounted read-only, so sharing it is safe. A pull or unpack that
fails (a registry that lies, a hostile layer) leaves no entry: the next revision starts over."""

from __future__ import annotations

import collections
import shutil
import threading
from pathlib import Path

from bazel.tools.layer_unpack import DEFAULT_UNPACK_LIMITS, UnpackLimits
from bazel.tools.oci_layout import Layout
from tools.cloud_run import registry_pull


class Images:
    def __init__(
        self,
        directory: Path,
        limits: registry_pull.Limits = registry_pull.DEFAULT_LIMITS,
        unpack_limits: UnpackLimits = DEFAULT_UNPACK_LIMITS,
    ) -> None:
        self.directory = directory
        self.limits = limits
        self.unpack_limits = unpack_limits
        self._locks: dict[str, threading.Lock] = collections.defaultdict(threading.Lock)
        self._locks_lock = threading.Lock()

    def unpacked(self, reference: str) -> tuple[Layout, Path]:
        """(layout, root filesystem) of the image `reference` names, pulled and unpacked on
        first use; PullError, OSError or ValueError when it cannot be."""
        _, _, digest = registry_pull.parse_reference(reference)
        with self._locks_lock:
            lock = self._locks[digest]
        with lock:
            base = self.directory / digest.replace(":", "-")
            layout_dir, rootfs, done = base / "layout", base / "rootfs", base / "unpacked"
            if not done.exists():
                if base.exists():
                    shutil.rmtree(base)  # an unpack this process began and did not finish
                try:
                    registry_pull.pull(reference, layout_dir, self.limits)
                    rootfs.mkdir(parents=True)
                    rootfs.chmod(0o755)  # it becomes /, which everyone must be able to enter
                    Layout(layout_dir).unpack(rootfs, self.unpack_limits)
                    done.touch()
                except BaseException:
                    shutil.rmtree(base, ignore_errors=True)
                    raise
            return Layout(layout_dir), rootfs
