"""deb_layer's reading of a .deb's member names, over a small synthetic package: only the `./`
prefix is removed (a name that starts with a dot keeps it), the archive's root is skipped, and a
package's own `./bin -> usr/bin` link (as merged-/usr packages ship) stays at /bin instead of
replacing the /usr/bin directory with a link to itself."""

from __future__ import annotations

import io
import tarfile

from absl.testing import absltest

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
    return _ar({"debian-binary": b"2.0\n", "data.tar": data.getvalue()})


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


if __name__ == "__main__":
    absltest.main()
