"""Applies one image layer (a tar) to a root filesystem without trusting it: the local Cloud
Run unpacks, as root, images from whatever registry a Service names. Every entry lands inside
the root, or the layer is refused with an error that names the entry:

- a name may not be absolute or have a `..` component;
- symlinks are made as the layer has them (an absolute target means the container's root,
  as it will inside the container), and a later path through one, this layer's or an earlier
  one's, is resolved inside the root the same way; one whose target climbs above the root
  with `..` is refused as a way through;
- a hard link must name an entry inside the root that is not a symlink (linking one links
  what it points to, resolved on the host);
- a whiteout (`.wh.NAME`, `.wh..wh..opq`) removes an entry of its own directory, never `.`
  or `..`, and that directory is resolved inside the root like any other path; whiteouts are
  applied before the rest of their layer, so they hide only the lower layers' entries;
- only files, directories, symlinks and hard links: device nodes, fifos and any other kind
  are refused (runc makes the container's /dev itself).

A layer is gunzipped a piece at a time to a temp file, within UnpackLimits (its size, the
image's, its gzip ratio, its number of entries), so that a decompression bomb fails early
instead of filling memory or the disk.

tarfile's own `data` filter is not used: it also rewrites modes and refuses absolute symlinks,
which real images (Debian's /etc/localtime) have, and resolves links on the host.
"""

from __future__ import annotations

import dataclasses
import gzip
import os
import tarfile
import tempfile
import zlib
from pathlib import Path
from typing import BinaryIO

MIB = 1 << 20
GIB = 1 << 30
# A layer is gunzipped a piece at a time, so that no more than this is ever in memory.
_CHUNK = MIB

# Linux gives up on a path after 40 symlinks (ELOOP); so does the unpack.
_MAX_SYMLINKS = 40
_OPAQUE = ".wh..wh..opq"
_WHITEOUT = ".wh."


class UnpackError(ValueError):
    """A layer entry that would reach outside the root filesystem, or of a kind not unpacked,
    or a layer over a limit."""


@dataclasses.dataclass(frozen=True)
class UnpackLimits:
    """What unpacking one image may cost, whatever its layers say: a few MiB of gzip can expand
    to terabytes. Far above real images (Debian and Python layers expand 3 to 5 times, to a few
    hundred MiB); tests pass small ones."""

    max_layer_bytes: int = 8 * GIB  # one layer's tar, uncompressed
    max_image_bytes: int = 16 * GIB  # all the layers' tars, uncompressed
    max_ratio: int = 200  # uncompressed over compressed size, once past ratio_from_bytes
    ratio_from_bytes: int = 64 * MIB  # a small layer of empty files may expand more
    max_entries: int = 250_000  # per layer: tarfile keeps each entry's header in memory


DEFAULT_UNPACK_LIMITS = UnpackLimits()


def apply_gzipped_layer(
    blob: Path, rootfs: Path, limits: UnpackLimits, image_bytes_before: int
) -> int:
    """Gunzips the layer `blob` into a temp file beside `rootfs`, within `limits` (the image's
    layers so far took `image_bytes_before`), then applies it; returns its uncompressed size.
    UnpackError as soon as a limit is passed."""
    with tempfile.TemporaryFile(dir=rootfs.parent) as tar_file:
        size = _gunzip(blob, tar_file, limits, image_bytes_before)
        tar_file.seek(0)
        try:
            with tarfile.open(fileobj=tar_file) as tar:
                apply_layer(tar, rootfs, limits)
        except tarfile.TarError as error:
            raise UnpackError(f"not a tar ({error})") from None
    return size


def _gunzip(blob: Path, into: BinaryIO, limits: UnpackLimits, image_bytes_before: int) -> int:
    compressed = blob.stat().st_size
    ratio_cap = max(limits.ratio_from_bytes, limits.max_ratio * compressed)
    written = 0
    try:
        with gzip.open(blob, "rb") as stream:
            while chunk := stream.read(_CHUNK):
                written += len(chunk)
                if written > limits.max_layer_bytes:
                    raise UnpackError(
                        f"more than the limit of {limits.max_layer_bytes} bytes uncompressed"
                    )
                if image_bytes_before + written > limits.max_image_bytes:
                    raise UnpackError(
                        "the image's layers unpack to more than the limit of "
                        f"{limits.max_image_bytes} bytes"
                    )
                if written > ratio_cap:
                    raise UnpackError(
                        f"its {compressed} bytes of gzip expand more than {limits.max_ratio} "
                        "times: a decompression bomb"
                    )
                into.write(chunk)
    except (gzip.BadGzipFile, EOFError, zlib.error) as error:  # not the disk's errors
        raise UnpackError(f"not a gzip stream ({error})") from None
    return written


def apply_layer(tar: tarfile.TarFile, rootfs: Path, limits: UnpackLimits) -> None:
    """Applies the entries of `tar` to `rootfs`, whiteouts first: a whiteout hides what the
    lower layers have (OCI image spec), never what its own layer writes, before or after it in
    the tar."""
    members = []
    for member in tar:
        if len(members) == limits.max_entries:
            raise UnpackError(f"more than {limits.max_entries} entries")
        members.append(member)
    for member in members:
        parts = _parts(member.name, member.name)
        name = parts[-1] if parts else "."
        if name == _OPAQUE or name.startswith(_WHITEOUT):
            _whiteout(_resolve(rootfs, parts[:-1], member.name), name, member.name)
    for member in members:
        parts = _parts(member.name, member.name)
        # Resolved again now that this layer's symlinks exist: a whiteout's directory may not
        # be reached through one that leads out of the root either.
        parent = _resolve(rootfs, parts[:-1], member.name)
        name = parts[-1] if parts else "."
        if name == _OPAQUE or name.startswith(_WHITEOUT):
            continue
        _check_kind(member)
        target = parent / name
        changes: dict[str, str] = {"name": os.path.relpath(target, rootfs)}
        if member.islnk():
            changes["linkname"] = _link_source(rootfs, member)
        _remove(target, keep_directories=True)
        tar.extract(
            member.replace(**changes, deep=False),
            rootfs,
            set_attrs=True,
            filter="fully_trusted",
        )


def _whiteout(parent: Path, name: str, entry: str) -> None:
    """Removes what the whiteout `name` hides in the directory `parent`: all of it (opaque) or
    one entry. A directory that the lower layers do not have hides nothing."""
    if name == _OPAQUE:
        if parent.is_dir():
            for child in parent.iterdir():
                _remove(child)
        return
    hidden = name[len(_WHITEOUT) :]
    if hidden in ("", ".", ".."):
        raise UnpackError(f"layer entry '{entry}': a whiteout of '{hidden}'")
    _remove(parent / hidden)


def _parts(path: str, entry: str) -> list[str]:
    """The components of a path in the layer, which must be relative and without `..`."""
    if path.startswith("/"):
        raise UnpackError(f"layer entry '{entry}': '{path}' is an absolute path")
    parts = [part for part in path.split("/") if part not in ("", ".")]
    if ".." in parts:
        raise UnpackError(f"layer entry '{entry}': '{path}' has a '..' component")
    return parts


def _resolve(rootfs: Path, parts: list[str], entry: str) -> Path:
    """The host path of the directory `parts` names inside `rootfs`, with every symlink on the
    way followed as the container will follow it: an absolute target from the root."""
    resolved: list[str] = []
    pending = list(parts)
    followed = 0
    while pending:
        part = pending.pop(0)
        if part in ("", "."):
            continue
        if part == "..":
            if not resolved:
                raise UnpackError(
                    f"layer entry '{entry}': a symlink on its path leads out of the root"
                )
            resolved.pop()  # each resolved component is a real directory: `..` is its parent
            continue
        path = rootfs.joinpath(*resolved, part)
        if not path.is_symlink():
            resolved.append(part)
            continue
        followed += 1
        if followed > _MAX_SYMLINKS:
            raise UnpackError(
                f"layer entry '{entry}': more than {_MAX_SYMLINKS} symlinks on its path"
            )
        target = os.readlink(path)
        if target.startswith("/"):
            resolved = []
        pending[:0] = target.split("/")
    return rootfs.joinpath(*resolved)


def _link_source(rootfs: Path, member: tarfile.TarInfo) -> str:
    """Where a hard link's source is in `rootfs` (relative to it): an entry of the root that is
    not a symlink."""
    parts = _parts(member.linkname, member.name)
    if not parts:
        raise UnpackError(f"layer entry '{member.name}': a hard link to the root")
    source = _resolve(rootfs, parts[:-1], member.name) / parts[-1]
    if source.is_symlink():
        raise UnpackError(
            f"layer entry '{member.name}': a hard link to the symlink '{member.linkname}'"
        )
    return os.path.relpath(source, rootfs)


def _check_kind(member: tarfile.TarInfo) -> None:
    if member.isreg() or member.isdir() or member.issym() or member.islnk():
        return
    if member.ischr() or member.isblk():
        kind = "a device node"
    elif member.isfifo():
        kind = "a fifo"
    else:
        kind = f"of tar type {member.type!r}"
    raise UnpackError(f"layer entry '{member.name}' is {kind}, which is not unpacked")


def _remove(path: Path, keep_directories: bool = False) -> None:
    if path.is_symlink() or path.is_file():
        path.unlink()
    elif path.is_dir() and not keep_directories:
        for child in path.iterdir():
            _remove(child)
        os.rmdir(path)
