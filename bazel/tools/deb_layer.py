"""Unpacks Debian packages into one layer, as a distroless base: `deb_layer.py OUT DEB...`.

No maintainer script runs (there is no shell to run it), so what those scripts would have made
is made here: the CA bundle that update-ca-certificates writes, and /etc/passwd and /etc/group
with root and a `nonroot` user (uid 65532). The layout is merged-/usr, as Debian 13 installs
it: /bin, /sbin, /lib and /lib64 are links into /usr, and files packaged under them move
there. Documentation, manuals and translations are left out, and so is Python's own test suite.
"""

from __future__ import annotations

import io
import lzma
import sys
import tarfile
from pathlib import Path

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


def _ar_members(data: bytes) -> dict[str, bytes]:
    if not data.startswith(b"!<arch>\n"):
        raise ValueError("not a .deb (ar archive)")
    members, offset = {}, 8
    while offset < len(data):
        header = data[offset : offset + 60]
        name = header[:16].decode().strip().rstrip("/")
        size = int(header[48:58].decode().strip())
        members[name] = data[offset + 60 : offset + 60 + size]
        offset += 60 + size + (size % 2)
    return members


def _data_tar(deb: bytes) -> tarfile.TarFile:
    members = _ar_members(deb)
    for name, member in members.items():
        if name.startswith("data.tar"):
            if name.endswith(".xz"):
                member = lzma.decompress(member)
            elif name.endswith(".zst"):
                from compression import zstd  # Python 3.14+

                member = zstd.decompress(member)
            elif not name.endswith(".tar"):
                raise ValueError(f"unsupported {name}")
            return tarfile.open(fileobj=io.BytesIO(member))
    raise ValueError("no data.tar in .deb")


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
    files: dict[str, Entry] = {}
    for deb in debs:
        with _data_tar(deb) as tar:
            for member in tar.getmembers():
                path = _canonical(member.name)
                if not path or not _kept(path):
                    continue
                mode = member.mode & 0o7777
                if member.isdir():
                    files.setdefault(path, Entry(path, mode=mode))
                elif member.issym():
                    files[path] = Entry(path, link=member.linkname)
                elif member.islnk():
                    target = tar.extractfile(tar.getmember(member.linkname))
                    files[path] = Entry(path, data=target.read(), mode=mode)
                elif member.isfile():
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
    return list(files.values())


def main(argv: list[str]) -> int:
    if len(argv) < 3:
        print("usage: deb_layer.py OUT DEB...", file=sys.stderr)
        return 2
    out, debs = Path(argv[1]), [Path(p).read_bytes() for p in argv[2:]]
    layer_tar.write(layer_tar.build(entries(debs)), out)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
