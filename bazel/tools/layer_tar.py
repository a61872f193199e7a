"""Deterministic layer tarballs: the same files give the same bytes, whoever builds them.

Entries are sorted, owned by root (or a given uid), dated 0 (1970-01-01), with normalized
modes (a copied file's from its bytes: file_mode); the gzip stream carries no name or timestamp.
A layer's two digests follow the OCI spec: `diff_id` of the uncompressed tar (for the image
config) and `digest` of the gzip blob (for the manifest). Beside them goes the list of the
layer's paths, so that an image can check what it runs is there without unpacking its layers.
"""

from __future__ import annotations

import dataclasses
import gzip
import io
import json
import struct
import tarfile
from pathlib import Path

from bazel.tools.oci import sha256_digest

DIRECTORY_MODE = 0o755
PROGRAM_MODE = 0o755
FILE_MODE = 0o644

_ELF_EXECUTABLE = 2  # e_type ET_EXEC
_ELF_SHARED = 3  # e_type ET_DYN: a shared library, or a position-independent executable
_ELF_INTERPRETER = 3  # p_type PT_INTERP: names the loader, which only an executable needs


def _is_elf_executable(data: bytes) -> bool:
    """An ELF program: of type EXEC, or DYN (a shared library or a position-independent
    executable) with a loader to run it (PT_INTERP)."""
    if len(data) < 64 or data[:4] != b"\x7fELF" or data[4] not in (1, 2) or data[5] not in (1, 2):
        return False
    order, wide = ("<" if data[5] == 1 else ">"), data[4] == 2
    (e_type,) = struct.unpack_from(order + "H", data, 16)
    if e_type != _ELF_SHARED:
        return e_type == _ELF_EXECUTABLE
    (phoff,) = struct.unpack_from(order + ("Q" if wide else "I"), data, 32 if wide else 28)
    phentsize, phnum = struct.unpack_from(order + "HH", data, 54 if wide else 42)
    headers = (phoff + i * phentsize for i in range(phnum))
    return any(
        struct.unpack_from(order + "I", data, at)[0] == _ELF_INTERPRETER
        for at in headers
        if at + 4 <= len(data)
    )


def file_mode(data: bytes) -> int:
    """A copied file's mode in a layer: 0755 for a program (a script with a `#!` line, an ELF
    executable), 0644 for everything else (modules, data, shared libraries).

    From the file's bytes, never from the input's permission bits: Bazel makes its outputs
    executable and a remote executor stages inputs with its own bits, so those say how the file
    reached the action, and a local and a remote build would pack different layers
    (docs/remote-builds.md)."""
    return PROGRAM_MODE if data.startswith(b"#!") or _is_elf_executable(data) else FILE_MODE


@dataclasses.dataclass(frozen=True)
class Entry:
    """One file, directory or symlink of a layer, at a path relative to `/`."""

    path: str
    data: bytes | None = None  # None: a directory, unless link is set
    mode: int = FILE_MODE
    link: str | None = None
    uid: int = 0
    gid: int = 0


@dataclasses.dataclass(frozen=True)
class Layer:
    tar: bytes
    gzip: bytes
    # Each file and symlink (not directories): path -> link target, or None for a file.
    paths: dict[str, str | None]

    @property
    def diff_id(self) -> str:
        return sha256_digest(self.tar)

    @property
    def digest(self) -> str:
        return sha256_digest(self.gzip)


def _parents(path: str) -> list[str]:
    parts = path.split("/")[:-1]
    return ["/".join(parts[: i + 1]) for i in range(len(parts))]


def build(entries: list[Entry]) -> Layer:
    """A layer of `entries`, with any missing parent directories added (root-owned, 0755)."""
    by_path: dict[str, Entry] = {}
    for entry in entries:
        path = entry.path.strip("/")
        by_path[path] = dataclasses.replace(entry, path=path)
    for path in list(by_path):
        for parent in _parents(path):
            by_path.setdefault(parent, Entry(parent, mode=DIRECTORY_MODE))

    paths: dict[str, str | None] = {}
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for path in sorted(by_path):
            entry = by_path[path]
            info = tarfile.TarInfo(path)
            info.mtime = 0
            info.uid, info.gid = entry.uid, entry.gid
            info.uname = info.gname = ""
            info.mode = entry.mode
            if entry.link is not None:
                info.type, info.linkname, info.mode = tarfile.SYMTYPE, entry.link, 0o777
                tar.addfile(info)
                paths[path] = entry.link
            elif entry.data is None:
                info.type = tarfile.DIRTYPE
                tar.addfile(info)
            else:
                info.size = len(entry.data)
                tar.addfile(info, io.BytesIO(entry.data))
                paths[path] = None
    compressed = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=compressed, mtime=0, compresslevel=6) as gz:
        gz.write(raw.getvalue())
    return Layer(tar=raw.getvalue(), gzip=compressed.getvalue(), paths=paths)


def tree_entries(directory: Path) -> list[Entry]:
    """The files under `directory` (e.g. a tree of .pyc files laid out as the image), each at
    its path relative to it."""
    return [
        Entry(path.relative_to(directory).as_posix(), data=path.read_bytes())
        for path in sorted(directory.rglob("*"))
        if path.is_file()
    ]


def write(layer: Layer, out: Path) -> None:
    """The gzip blob to `out`, and beside it its digests (`out.digest`, `out.diff_id`) and
    paths (`out.paths.json`)."""
    out.write_bytes(layer.gzip)
    Path(f"{out}.digest").write_text(layer.digest)
    Path(f"{out}.diff_id").write_text(layer.diff_id)
    Path(f"{out}.paths.json").write_text(json.dumps(layer.paths, sort_keys=True))
