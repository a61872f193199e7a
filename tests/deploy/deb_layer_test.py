"""deb_layer's reading of a .deb's member names, over a small synthetic package: only the `./`
prefix is removed (a name that starts with a dot keeps it), the archive's root is skipped, and a
package's own `./bin -> usr/bin` link (as merged-/usr packages ship) stays at /bin instead of
replacing the /usr/bin directory with a link to itself. And what a deb_layer's Python needs to
run in a build action (python_root): the interpreter, the loader its ELF header names (found
through the layer's links), the libraries beside it and the .py files to compile. A hard link
reads as its target; a file that is no .deb, or a .deb without a control file, fails the tool in
one line."""

from __future__ import annotations

import contextlib
import io
import struct
import tarfile
from pathlib import Path

from absl.testing import absltest
from debian.deb822 import Deb822

from bazel.tools import deb_layer, layer_tar


def _ar(members: dict[str, bytes]) -> bytes:
    out = b"!<arch>\n"
    for name, data in members.items():
        header = f"{name + '/':<16}{0:<12}{0:<6}{0:<6}{0o100644:<8o}{len(data):<10}`\n"
        out += header.encode() + data + (b"\n" if len(data) % 2 else b"")
    return out


def _deb(members: list[tuple[str, bytes | None, str | None]]) -> bytes:
    """A .deb whose data.tar holds (name, file data or None for a directory, link target)."""
    data = io.BytesIO()
    with tarfile.open(fileobj=data, mode="w", format=tarfile.GNU_FORMAT) as tar:
        for name, content, link in members:
            info = tarfile.TarInfo(name)
            if link is not None:
                info.type, info.linkname = tarfile.SYMTYPE, link
                tar.addfile(info)
            elif content is None:
                info.type, info.mode = tarfile.DIRTYPE, 0o755
                tar.addfile(info)
            else:
                info.size = len(content)
                tar.addfile(info, io.BytesIO(content))
    return _ar({
        "debian-binary": b"2.0\n",
        "control.tar.gz": _control_tar(CONTROL),
        "data.tar": data.getvalue(),
    })  # fmt: skip


CONTROL = (
    "Package: kit\n"
    "Source: kit-src (1.0-1)\n"
    "Version: 1.0-1+b1\n"
    "Architecture: amd64\n"
    "Description: a kit\n"
    " of parts.\n"
)


def _control_tar(control: str, control_name: str = "./control") -> bytes:
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w:gz", format=tarfile.GNU_FORMAT) as tar:
        for name, content in ((control_name, control.encode()), ("./md5sums", b"")):
            info = tarfile.TarInfo(name)
            info.size = len(content)
            tar.addfile(info, io.BytesIO(content))
    return raw.getvalue()


DEB = _deb([
    ("./", None, None),
    ("./.hidden", b"dot file\n", None),
    ("./bin", None, "usr/bin"),
    ("./usr/", None, None),
    ("./usr/bin/", None, None),
    ("./usr/bin/tool", b"#!tool\n", None),
    ("./lib/x86_64-linux-gnu/libkit.so.1", b"ELF", None),
    ("./usr/share/doc/kit/copyright", b"text", None),
])  # fmt: skip


LOADER = "/lib64/ld-linux-x86-64.so.2"


def _elf(interpreter: str) -> bytes:
    """A 64-bit little-endian ELF header with one program header: PT_INTERP `interpreter`."""
    header = b"\x7fELF\x02\x01\x01" + bytes(9)
    header += struct.pack("<HHIQQQIHHHHHH", 2, 62, 1, 0, 64, 0, 0, 64, 56, 1, 0, 0, 0)
    name = interpreter.encode() + b"\0"
    program = struct.pack("<IIQQQQQQ", 3, 4, 64 + 56, 0, 0, len(name), len(name), 1)
    return header + program + name


PYTHON_DEB = _deb([
    ("./usr/bin/python3.13", _elf(LOADER), None),
    ("./usr/lib64/ld-linux-x86-64.so.2", None, "../lib/x86_64-linux-gnu/ld-linux-x86-64.so.2"),
    ("./usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2", b"loader", None),
    ("./usr/lib/x86_64-linux-gnu/libc.so.6", b"libc", None),
    ("./usr/lib/x86_64-linux-gnu/libz.so.1", None, "libz.so.1.3"),
    ("./usr/lib/x86_64-linux-gnu/libz.so.1.3", b"libz", None),
    ("./usr/lib/python3.13/os.py", b"import sys\n", None),
    ("./usr/lib/python3.13/urllib/__init__.py", b"", None),
    ("./usr/lib/python3.13/sitecustomize.py", None, "/etc/python3.13/sitecustomize.py"),
    ("./etc/python3.13/sitecustomize.py", b"pass\n", None),
    ("./usr/lib/python3.13/lib-dynload/_ssl.so", b"ELF", None),
    ("./usr/share/zoneinfo/UTC", b"TZif", None),
])  # fmt: skip


class DebLayerTest(absltest.TestCase):
    def test_member_names_lose_only_the_dot_slash_prefix(self) -> None:
        entries = {entry.path: entry for entry in deb_layer.entries([DEB])}
        self.assertEqual(entries[".hidden"].data, b"dot file\n")
        self.assertNotIn("hidden", entries)
        self.assertNotIn("", entries)
        self.assertNotIn(".", entries)
        self.assertEqual(entries["usr/bin/tool"].data, b"#!tool\n")
        self.assertEqual(entries["usr/lib/x86_64-linux-gnu/libkit.so.1"].data, b"ELF")
        self.assertNotIn("usr/share/doc/kit/copyright", entries)

    def test_a_packaged_bin_link_leaves_usr_bin_a_directory(self) -> None:
        layer = layer_tar.build(deb_layer.entries([DEB]))
        with tarfile.open(fileobj=io.BytesIO(layer.tar)) as tar:
            members = {member.name: member for member in tar.getmembers()}
        self.assertTrue(members["usr/bin"].isdir(), members["usr/bin"].linkname)
        self.assertTrue(members["bin"].issym())
        self.assertEqual(members["bin"].linkname, "usr/bin")
        self.assertTrue(members["usr/bin/tool"].isfile())

    def test_elf_interpreter_is_read_from_the_program_headers(self) -> None:
        self.assertEqual(deb_layer.elf_interpreter(_elf(LOADER)), LOADER)
        with self.assertRaisesRegex(ValueError, "not a 64-bit"):
            deb_layer.elf_interpreter(b"#!/bin/sh\n")

    def test_python_root_has_what_the_interpreter_runs_with(self) -> None:
        files = {entry.path: entry for entry in deb_layer.entries([PYTHON_DEB])}
        tree, description = deb_layer.python_root(files, "/usr/bin/python3.13")
        self.assertEqual(
            description,
            {
                "interpreter": "usr/bin/python3.13",
                # /lib64 (the layer's link to usr/lib64), then the package's relative link.
                "loader": "usr/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2",
                "library_path": ["usr/lib/x86_64-linux-gnu"],
                "home": "usr",
                # An empty file is a source too, and so is a link to one (where it is imported).
                "sources": [
                    "etc/python3.13/sitecustomize.py",
                    "usr/lib/python3.13/os.py",
                    "usr/lib/python3.13/sitecustomize.py",
                    "usr/lib/python3.13/urllib/__init__.py",
                ],
            },
        )
        self.assertEqual(tree["usr/lib/x86_64-linux-gnu/libz.so.1"], b"libz")  # link followed
        self.assertEqual(tree["usr/lib/python3.13/sitecustomize.py"], b"pass\n")
        self.assertEqual(tree["usr/lib/python3.13/lib-dynload/_ssl.so"], b"ELF")
        self.assertEqual(tree["usr/lib/python3.13/urllib/__init__.py"], b"")
        self.assertNotIn("usr/share/zoneinfo/UTC", tree)

    def test_python_root_without_the_interpreter_fails_naming_it(self) -> None:
        files = {entry.path: entry for entry in deb_layer.entries([DEB])}
        with self.assertRaisesRegex(ValueError, "usr/bin/python3.13 is not a file"):
            deb_layer.python_root(files, "/usr/bin/python3.13")

    def test_each_package_has_its_dpkg_status_file(self):
        files = {entry.path: entry for entry in deb_layer.entries([DEB])}
        status = files["var/lib/dpkg/status.d/kit"].data.decode()
        self.assertEqual(
            status,
            "Package: kit\nStatus: install ok installed\nSource: kit-src (1.0-1)\n"
            "Version: 1.0-1+b1\nArchitecture: amd64\nDescription: a kit\n of parts.\n",
        )
        fields = Deb822(status)
        self.assertEqual(fields["Description"], "a kit\n of parts.")
        self.assertIn('VERSION_ID="13"', files["etc/os-release"].data.decode())
        self.assertEqual(files["usr/lib/os-release"].link, "../../etc/os-release")

    def test_a_status_entry_replaces_any_status_of_the_control_file(self):
        entry = deb_layer.status_entry("Package: a\nStatus: purge ok not-installed\nVersion: 1\n")
        self.assertEqual(entry, "Package: a\nStatus: install ok installed\nVersion: 1\n")
        with self.assertRaises(ValueError):
            deb_layer.status_entry("Version: 1\n")

    def test_a_hard_link_in_an_xz_data_tar_reads_as_its_target_with_its_own_mode(self) -> None:
        data = io.BytesIO()
        with tarfile.open(fileobj=data, mode="w:xz", format=tarfile.GNU_FORMAT) as tar:
            info = tarfile.TarInfo("./usr/bin/kit")
            info.size, info.mode = 4, 0o755
            tar.addfile(info, io.BytesIO(b"kit\n"))
            link = tarfile.TarInfo("./usr/bin/kit-alias")
            link.type, link.linkname, link.mode = tarfile.LNKTYPE, "./usr/bin/kit", 0o700
            tar.addfile(link)
        deb = _ar({
            "debian-binary": b"2.0\n",
            "control.tar.gz": _control_tar(CONTROL),
            "data.tar.xz": data.getvalue(),
        })  # fmt: skip
        entries = {entry.path: entry for entry in deb_layer.entries([deb])}
        self.assertEqual(entries["usr/bin/kit-alias"].data, b"kit\n")
        self.assertEqual(entries["usr/bin/kit-alias"].mode, 0o700)
        self.assertEqual(entries["usr/bin/kit"].mode, 0o755)

    def run_main(self, deb: bytes) -> tuple[int, list[str], Path]:
        directory = Path(self.create_tempdir().full_path)
        (directory / "bad.deb").write_bytes(deb)
        stderr = io.StringIO()
        out = directory / "layer.tar.gz"
        with contextlib.redirect_stderr(stderr):
            code = deb_layer.main(["deb_layer.py", "--out", str(out), str(directory / "bad.deb")])
        return code, stderr.getvalue().splitlines(), out

    def test_a_file_that_is_no_deb_fails_in_one_line(self) -> None:
        code, lines, out = self.run_main(b"#!/bin/sh\n")
        self.assertEqual(code, 1)
        self.assertEqual(len(lines), 1, lines)
        self.assertIn("deb_layer.py: not a .deb", lines[0])
        self.assertFalse(out.exists())

    def test_a_deb_without_a_control_file_fails_in_one_line(self) -> None:
        deb = _ar({
            "debian-binary": b"2.0\n",
            "control.tar.gz": _control_tar(CONTROL, control_name="./controls"),
            "data.tar": b"",
        })  # fmt: skip
        code, lines, out = self.run_main(deb)
        self.assertEqual(code, 1)
        self.assertEqual(len(lines), 1, lines)
        self.assertIn("deb_layer.py: no control file in the .deb's control.tar", lines[0])
        self.assertFalse(out.exists())


if __name__ == "__main__":
    absltest.main()
