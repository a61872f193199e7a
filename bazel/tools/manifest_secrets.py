"""Secrets in a service's settings: Secret Manager references, and where Cloud Run may mount
them as files (secret_file_problems), then those mounts grouped by directory (secret_mounts).

Apart from the other rules (manifest_rules.py): the mount rules come from Cloud Run's
"Configure secrets" page and from what the kit's images need to stay visible.
"""

from __future__ import annotations

import posixpath
import re

from bazel.tools.manifest_settings import Settings

# Secret Manager: a secret ID is at most 255 letters, digits, `-` and `_`; Cloud Run takes a
# version number or `latest` (SecretKeySelector.key, KeyToPath.key). A secret of another project
# needs an alias in the run.googleapis.com/secrets annotation (set it in revision_annotations)
# and the alias as the secret name here.
SECRET_REFERENCE = re.compile(r"(?P<secret>[A-Za-z0-9_-]{1,255}):(?P<version>latest|[1-9][0-9]*)")
# Cloud Run refuses secret mounts at /dev, /proc and /sys and below (Configure secrets,
# Limitations). A mount hides whatever the image has in that directory, so the kit also refuses
# the directories its images need: the root, what the programs run from (the app layer's /app,
# Debian's /usr and its /bin, /lib, /sbin links, and below), and the system directories themselves.
SECRET_MOUNT_FORBIDDEN_TREES = ("/dev", "/proc", "/sys")
SECRET_MOUNT_IMAGE_TREES = ("/app", "/usr", "/bin", "/lib", "/lib64", "/sbin", "/etc/ssl")
SECRET_MOUNT_IMAGE_DIRECTORIES = ("/", "/etc", "/home", "/root", "/run", "/tmp", "/var")


def _within(path: str, tree: str) -> bool:
    return path == tree or path.startswith(tree.rstrip("/") + "/")


def secret_mounts(s: Settings) -> dict[str, tuple[str, list[tuple[str, str]]]]:
    """secret_files by mount directory: the secret and its (file name, version) items.

    Only for settings whose secret_files passed settings_problems.
    """
    mounts: dict[str, tuple[str, list[tuple[str, str]]]] = {}
    for path, reference in sorted(s.secret_files.items()):
        directory, file_name = posixpath.split(path)
        match = SECRET_REFERENCE.fullmatch(reference)
        assert match is not None, reference
        mounts.setdefault(directory, (match["secret"], []))[1].append((file_name, match["version"]))
    return mounts


def secret_file_problems(s: Settings) -> list[str]:
    """Secret files Cloud Run would not mount, or that would hide the image's own files."""
    problems = []
    secrets_by_directory: dict[str, set[str]] = {}
    for path, reference in sorted(s.secret_files.items()):
        match = SECRET_REFERENCE.fullmatch(reference)
        if match is None:
            problems.append(
                f"secret_files {path}: {reference!r} is not SECRET:VERSION (a Secret Manager "
                "secret ID, and a version number or latest)"
            )
        directory, file_name = posixpath.split(path)
        if (
            not path.startswith("/")
            or posixpath.normpath(path) != path
            or ":" in path
            or file_name in ("", ".", "..")
        ):
            problems.append(
                f"secret_files {path!r}: an absolute path, directory and file name, such as "
                "/secrets/db/password (no '..', '//', ':' or trailing '/')"
            )
            continue
        if forbidden := [t for t in SECRET_MOUNT_FORBIDDEN_TREES if _within(directory, t)]:
            problems.append(
                f"secret_files {path}: Cloud Run does not mount secrets at {forbidden[0]} or below"
            )
            continue
        hidden = directory in SECRET_MOUNT_IMAGE_DIRECTORIES or any(
            _within(directory, tree) for tree in SECRET_MOUNT_IMAGE_TREES
        )
        if hidden:
            problems.append(
                f"secret_files {path}: mounting at {directory} would hide the image's own files "
                "there; mount in a directory of its own, such as /secrets/NAME"
            )
            continue
        if match is not None:
            secrets_by_directory.setdefault(directory, set()).add(match["secret"])
    for directory, secrets in sorted(secrets_by_directory.items()):
        if len(secrets) > 1:
            problems.append(
                f"secret_files: {directory} would hold secrets {', '.join(sorted(secrets))}; "
                "Cloud Run mounts one secret per directory"
            )
    return problems
