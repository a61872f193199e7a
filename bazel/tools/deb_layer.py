"""Unpacks Debian packages into one layer, as a distroless base: `deb_layer.py OUT DEB...`.

No maintainer script runs (there is no shell to run it), so what those scripts would have made
is made here: the CA bundle that update-ca-certificates writes, and /etc/passwd and /etc/group
with root and a `nonroot` user (uid 65532). The layout is merged-/usr, as Debian 13 installs
it: /bin, /sbin, /lib and /lib64 are links into /usr, and files packaged under them move
there. Documentation, manuals and translations are left out, and so is Python's own test suite.

Scanners (Trivy, Grype, Artifact Registry) see the packages as distroless images show them: one
`/var/lib/dpkg/status.d/<package>` file per package, its .deb's control paragraph with
`Status: install ok installed` after the `Package:` line, and `/etc/os-release` for Debian 13
(with `/usr/lib/os-release` a link to it). The lock has no base-files (whose os-release Debian
installs), so the file is the content of trixie's base-files without its point release
(`DEBIAN_VERSION_FULL`), which a lock of trixie alone does not fix.

python-debian reads the .debs (DebFile) and their control paragraphs (deb822). It reads xz, gz
and bz2 members itself, and zstd ones only through an `unzstd` on PATH: Debian's packages are xz.

    deb_layer.py --out OUT [--bytecode DIR] DEB...
        the layer, with the .pyc files under DIR (bytecode.py's output) added at their paths;
    deb_layer.py --python-root DIR --python /usr/bin/python3.13 DEB...
        the packages' Python unpacked into DIR for build actions to run (see python_root).
"""

from __future__ import annotations

import argparse
import io
import json
import posixpath
import struct
import sys
from pathlib import Path

from debian.arfile import ArError
from debian.deb822 import Deb822
from debian.debfile import DebError, DebFile

from bazel.tools import layer_tar
from bazel.tools.layer_tar import Entry

NONROOT_UID = 65532
MERGED = ("bin", "sbin", "lib", "lib64")
DROPPED_PREFIXES = (
    "usr/share/doc/",
    "usr/share/man/",
    "usr/share/info/",
    "usr/share/locale/",
    "usr/share/lintian/",
    "usr/share/bug/",
    "etc/init.d/",
    "usr/share/gdb/",
    # libstdc++'s pretty-printers for gdb (Python), which the image has not.
    "usr/share/gcc/",
    # glibc's iconv modules for legacy character sets (9 MB); UTF-8 needs none of them.
    "usr/lib/x86_64-linux-gnu/gconv/",
)
# Parts of the standard library a server never imports: tests, GUI toolkits, dev tools.
DROPPED_PYTHON = ("test/", "idlelib/", "tkinter/", "turtledemo/", "ensurepip/", "lib2to3/")
PASSWD = (
    "root:x:0:0:root:/root:/sbin/nologin\n"
    "nonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n"
)
GROUP = "root:x:0:\nnonroot:x:65532:\n"
STATUS_DIR = "var/lib/dpkg/status.d"
OS_RELEASE = (
    'PRETTY_NAME="Debian GNU/Linux 13 (trixie)"\n'
    'NAME="Debian GNU/Linux"\n'
    'VERSION_ID="13"\n'
    'VERSION="13 (trixie)"\n'
    "VERSION_CODENAME=trixie\n"
    "ID=debian\n"
    'HOME_URL="https://www.debian.org/"\n'
    'SUPPORT_URL="https://www.debian.org/support"\n'
    'BUG_REPORT_URL="https://bugs.debian.org/"\n'
)


def _open(deb: bytes) -> DebFile:
    try:
        return DebFile(fileobj=io.BytesIO(deb))
    except ArError as error:
        raise ValueError(f"not a .deb: {error}") from error


def _control(package: DebFile) -> str:
    """The .deb's control paragraph (its control.tar's `control` file), ending in one newline."""
    try:
        return package.control.get_content("control").decode().strip("\n") + "\n"
    except DebError as error:
        raise ValueError(f"no control file in the .deb's control.tar: {error}") from error


def status_entry(paragraph: str) -> str:
    """The status.d file of a package: its control paragraph, installed, as dpkg records it
    (Package first, then Status, then the other fields in their order)."""
    fields = Deb822(paragraph)
    if "Package" not in fields:
        raise ValueError("a control paragraph has a Package field")
    status = Deb822({"Package": fields["Package"], "Status": "install ok installed"})
    status.update((key, value) for key, value in fields.items() if key not in status)
    return status.dump()


def _canonical(name: str) -> str:
    """A data.tar member's path in the layer; "" for the archive's root (`.` or `./`).

    Only the `./` prefix goes: `./.hidden` stays `.hidden`. What is under /bin, /sbin, /lib and
    /lib64 moves into /usr, but those names themselves stay, so a package's own `./bin` link or
    directory lands on `bin` (which the layer makes a link into /usr), never on `usr/bin`.
    """
    path = name.removeprefix("./").rstrip("/")
    if path == ".":
        return ""
    head, _, rest = path.partition("/")
    return f"usr/{head}/{rest}" if head in MERGED and rest else path


def _kept(path: str) -> bool:
    if path.startswith(DROPPED_PREFIXES):
        return False
    python_lib = path.startswith("usr/lib/python3.") and path.count("/") >= 3
    return not (python_lib and path.split("/", 3)[3].startswith(DROPPED_PYTHON))


def entries(debs: list[bytes]) -> list[Entry]:
    return list(_files(debs).values())


def _files(debs: list[bytes]) -> dict[str, Entry]:
    files: dict[str, Entry] = {}
    status: dict[str, bytes] = {}
    for deb in debs:
        package = _open(deb)
        paragraph = _control(package)
        status[Deb822(paragraph)["Package"]] = status_entry(paragraph).encode()
        # Each member read as it comes, so the compressed stream is read once, front to back.
        with package.data.tgz() as tar:
            for member in tar:
                path = _canonical(member.name)
                if not path or not _kept(path):
                    continue
                mode = member.mode & 0o7777
                if member.isdir():
                    files.setdefault(path, Entry(path, mode=mode))
                elif member.issym():
                    files[path] = Entry(path, link=member.linkname)
                elif member.isfile() or member.islnk():
                    # A hard link reads as its target (an earlier member) with its own mode.
                    files[path] = Entry(path, data=tar.extractfile(member).read(), mode=mode)
    for name in MERGED:
        files[name] = Entry(name, link=f"usr/{name}")
    certs = sorted(
        p for p in files if p.startswith("usr/share/ca-certificates/") and p.endswith(".crt")
    )
    bundle = b"".join(files[p].data or b"" for p in certs)
    files["etc/ssl/certs/ca-certificates.crt"] = Entry(
        "etc/ssl/certs/ca-certificates.crt", data=bundle
    )
    files["etc/passwd"] = Entry("etc/passwd", data=PASSWD.encode())
    files["etc/group"] = Entry("etc/group", data=GROUP.encode())
    files["home/nonroot"] = Entry("home/nonroot", mode=0o700, uid=NONROOT_UID, gid=NONROOT_UID)
    files["tmp"] = Entry("tmp", mode=0o1777)
    files["etc/localtime"] = Entry("etc/localtime", link="/usr/share/zoneinfo/Etc/UTC")
    files["etc/os-release"] = Entry("etc/os-release", data=OS_RELEASE.encode())
    files["usr/lib/os-release"] = Entry("usr/lib/os-release", link="../../etc/os-release")
    for directory in ("var", "var/lib", "var/lib/dpkg", STATUS_DIR):
        files.setdefault(directory, Entry(directory, mode=0o755))
    for name in sorted(status):
        path = f"{STATUS_DIR}/{name}"
        files[path] = Entry(path, data=status[name], mode=0o644)
    return files


def resolve(files: dict[str, Entry], path: str) -> str:
    """`path` (relative to `/`) with every symlink in it followed within the layer."""
    for _ in range(40):
        parts, done = path.strip("/").split("/"), []
        for index, part in enumerate(parts):
            entry = files.get("/".join([*done, part]))
            if entry is not None and entry.link is not None:
                base = "/" if entry.link.startswith("/") else "/" + "/".join(done)
                target = posixpath.normpath(posixpath.join(base, entry.link))
                path = "/".join([target.strip("/"), *parts[index + 1 :]]).strip("/")
                break
            done.append(part)
        else:
            return path
    raise ValueError(f"too many levels of symbolic links: {path}")


def elf_interpreter(data: bytes) -> str:
    """The program interpreter (dynamic loader) a 64-bit little-endian ELF executable names."""
    if data[:4] != b"\x7fELF" or data[4] != 2 or data[5] != 1:
        raise ValueError("not a 64-bit little-endian ELF file")
    (phoff,) = struct.unpack_from("<Q", data, 0x20)
    phentsize, phnum = struct.unpack_from("<HH", data, 0x36)
    for index in range(phnum):
        header = phoff + index * phentsize
        if struct.unpack_from("<I", data, header)[0] == 3:  # PT_INTERP
            (offset,) = struct.unpack_from("<Q", data, header + 8)
            (size,) = struct.unpack_from("<Q", data, header + 32)
            return data[offset : offset + size].rstrip(b"\0").decode()
    raise ValueError("a static executable: no program interpreter")


def python_root(files: dict[str, Entry], python: str) -> tuple[dict[str, bytes], dict]:
    """What running the layer's `python` in a build action needs, as regular files (symlinks
    followed): the interpreter, its dynamic loader and the libraries beside it, its standard
    library, and every other .py file of the layer (to compile). With it, a description:
    `{"interpreter", "loader", "library_path", "home", "sources"}`, paths relative to the root,
    `sources` the layer's .py paths (symlinks included: the importer looks there)."""

    def data(path: str) -> bytes:
        entry = files.get(resolve(files, path))
        if entry is None or entry.data is None:
            raise ValueError(f"{path} is not a file of the layer")
        return entry.data

    interpreter = python.strip("/")
    loader = resolve(files, elf_interpreter(data(interpreter)))
    library_dir = posixpath.dirname(loader)
    stdlib = f"usr/lib/{posixpath.basename(interpreter)}/"
    sources = sorted(
        path
        for path in files
        if path.endswith(".py")
        and getattr(files.get(resolve(files, path)), "data", None) is not None
    )
    wanted = {interpreter, loader, *sources}
    for path in files:
        in_library_dir = posixpath.dirname(path) == library_dir
        if path.startswith(stdlib) or in_library_dir:
            target = files.get(resolve(files, path))
            if target is not None and target.data is not None:
                wanted.add(path)
    tree = {path: data(path) for path in sorted(wanted)}
    description = {
        "interpreter": interpreter,
        "loader": loader,
        "library_path": [library_dir],
        "home": "usr",
        "sources": sources,
    }
    return tree, description


def write_python_root(debs: list[bytes], python: str, directory: Path) -> None:
    """The packages' `python` unpacked into `directory` (see python_root), with python.json."""
    tree, description = python_root(_files(debs), python)
    for path, content in tree.items():
        (directory / path).parent.mkdir(parents=True, exist_ok=True)
        (directory / path).write_bytes(content)
        (directory / path).chmod(0o755)
    (directory / "python.json").write_text(json.dumps(description, indent=1))


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="deb_layer.py")
    parser.add_argument("--out", type=Path, help="the layer's gzip tar")
    parser.add_argument("--bytecode", type=Path, help="a directory of .pyc files to add")
    parser.add_argument("--python-root", type=Path, help="unpack the Python here instead")
    parser.add_argument("--python", help="the interpreter, e.g. /usr/bin/python3.13")
    parser.add_argument("debs", nargs="+", type=Path)
    args = parser.parse_args(argv[1:])
    if args.python_root and (not args.python or args.out):
        parser.error("--python-root takes --python and no --out")
    if not args.python_root and not args.out:
        parser.error("--out or --python-root is required")
    debs = [path.read_bytes() for path in args.debs]
    try:
        if args.python_root:
            write_python_root(debs, args.python, args.python_root)
            return 0
        layer = entries(debs) + (layer_tar.tree_entries(args.bytecode) if args.bytecode else [])
    # DebError (an ArError) also covers a member tarfile cannot read, and a data.tar.zst when
    # python-debian's `unzstd` is not on PATH.
    except (ArError, ValueError) as error:
        print(f"deb_layer.py: {error}", file=sys.stderr)
        return 1
    layer_tar.write(layer_tar.build(layer), args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
