"""Layout.unpack (bazel/tools/oci_layout.py, layer_unpack.py) on hostile layers built here
with `tarfile`: each way out of the root filesystem is refused with an error naming the entry,
and nothing appears outside the root. An ordinary image (files, symlinks absolute and
relative, hard links, whiteouts over two layers) still unpacks as before."""

from __future__ import annotations

import gzip
import os
import tarfile
import zlib
from pathlib import Path

from absl.testing import absltest

from bazel.tools.layer_unpack import UnpackError, UnpackLimits
from bazel.tools.oci_layout import Layout
from tests.cloud_run.oci_fixture import (
    Entry,
    directory,
    file,
    hardlink,
    image,
    layer,
    symlink,
    write_layout,
)


class UnpackTest(absltest.TestCase):
    def setUp(self) -> None:
        super().setUp()
        top = Path(self.create_tempdir().full_path)
        self.outside = top / "outside"  # a sibling of the root that nothing may touch
        self.outside.mkdir()
        (self.outside / "victim").write_text("victim")
        self.root = top / "root"
        self.root.mkdir()
        self.layouts = top / "layouts"
        self.unpacked = 0

    def unpack(self, *layers: bytes, limits: UnpackLimits | None = None) -> None:
        self.unpacked += 1
        layout = Layout(write_layout(image(*layers), self.layouts / str(self.unpacked)))
        if limits is None:
            layout.unpack(self.root)
        else:
            layout.unpack(self.root, limits)

    def assertRefused(
        self, message: str, *layers: bytes, limits: UnpackLimits | None = None
    ) -> None:
        """Refused with `message`, nothing outside touched, and nothing half-written: the root
        stays empty (the layers before the refused one included) and no temp file is left."""
        with self.assertRaises(UnpackError) as caught:
            self.unpack(*layers, limits=limits)
        self.assertIn(message, str(caught.exception))
        self.assertNotIn("\n", str(caught.exception))
        self.assertEqual(os.listdir(self.outside), ["victim"])
        self.assertEqual((self.outside / "victim").read_text(), "victim")
        self.assertEqual(os.listdir(self.root), [])
        self.assertEqual(sorted(os.listdir(self.root.parent)), ["layouts", "outside", "root"])

    def test_an_absolute_name_is_refused(self) -> None:
        name = str(self.outside / "planted")
        self.assertRefused(f"layer entry '{name}': '{name}' is an absolute path", layer(file(name)))

    def test_a_dot_dot_component_is_refused(self) -> None:
        self.assertRefused(
            "layer entry 'app/../../outside/planted': 'app/../../outside/planted' has a '..'",
            layer(directory("app"), file("app/../../outside/planted")),
        )

    def test_writing_through_a_symlink_out_of_the_root_is_refused(self) -> None:
        self.assertRefused(
            "layer entry 'escape/planted': a symlink on its path leads out of the root",
            layer(symlink("escape", "../outside"), file("escape/planted")),
        )

    def test_a_symlink_from_an_earlier_layer_is_no_way_out(self) -> None:
        self.assertRefused(
            "layer entry 'a/b/planted': a symlink on its path leads out of the root",
            layer(directory("a"), symlink("a/b", "../../outside")),
            layer(file("a/b/planted")),
        )

    def test_a_chain_of_symlinks_out_of_the_root_is_refused(self) -> None:
        self.assertRefused(
            "layer entry 'one/planted': a symlink on its path leads out of the root",
            layer(
                symlink("one", "two"),
                symlink("two", "/three/.."),
                symlink("three", ".."),
                file("one/planted"),
            ),
        )

    def test_an_absolute_symlink_is_followed_inside_the_root(self) -> None:
        """As the container sees it: `/outside` is the root's own, not the host's."""
        self.unpack(layer(symlink("escape", str(self.outside)), file("escape/planted", b"in")))
        self.assertEqual(
            (self.root / str(self.outside).lstrip("/") / "planted").read_bytes(), b"in"
        )
        self.assertEqual(os.readlink(self.root / "escape"), str(self.outside))

    def test_a_symlink_loop_is_refused(self) -> None:
        self.assertRefused(
            "layer entry 'loop/planted': more than 40 symlinks",
            layer(symlink("loop", "loop"), file("loop/planted")),
        )

    def test_a_hard_link_out_of_the_root_is_refused(self) -> None:
        self.assertRefused(
            "layer entry 'link': '../outside/victim' has a '..' component",
            layer(hardlink("link", "../outside/victim")),
        )
        self.assertRefused(
            f"layer entry 'link': '{self.outside}/victim' is an absolute path",
            layer(hardlink("link", f"{self.outside}/victim")),
        )

    def test_a_hard_link_to_a_symlink_is_refused(self) -> None:
        """os.link follows a symlink on the host: this one names the victim outside."""
        self.assertRefused(
            "layer entry 'link': a hard link to the symlink 'pointer'",
            layer(symlink("pointer", str(self.outside / "victim")), hardlink("link", "pointer")),
        )

    def test_a_hard_link_through_a_symlink_out_of_the_root_is_refused(self) -> None:
        self.assertRefused(
            "layer entry 'link': a symlink on its path leads out of the root",
            layer(symlink("escape", "../outside"), hardlink("link", "escape/victim")),
        )

    def test_whiteouts_that_leave_their_directory_are_refused(self) -> None:
        self.assertRefused(
            "layer entry 'app/.wh...': a whiteout of '..'", layer(file("app/.wh..."))
        )
        self.assertRefused("layer entry '.wh.': a whiteout of ''", layer(file(".wh.")))
        self.assertRefused(
            "layer entry 'escape/.wh.victim': a symlink on its path leads out of the root",
            layer(symlink("escape", "../outside")),
            layer(file("escape/.wh.victim")),
        )
        self.assertRefused(
            "layer entry 'escape/.wh..wh..opq': a symlink on its path leads out of the root",
            layer(symlink("escape", "../outside"), file("escape/.wh..wh..opq")),
        )

    def test_device_nodes_and_fifos_are_refused(self) -> None:
        for kind, what in [
            (tarfile.CHRTYPE, "a device node"),
            (tarfile.BLKTYPE, "a device node"),
            (tarfile.FIFOTYPE, "a fifo"),
        ]:
            with self.subTest(kind=kind):
                self.assertRefused(
                    f"layer entry 'dev/thing' is {what}, which is not unpacked",
                    layer(directory("dev"), Entry("dev/thing", kind)),
                )
                self.assertFalse((self.root / "dev/thing").exists())

    def test_whiteouts_hide_only_the_lower_layers(self) -> None:
        """OCI image spec: a whiteout, opaque or not, hides the lower layers' entries; what its
        own layer writes stays, before or after it in the tar."""
        self.unpack(
            layer(
                directory("cache"),
                file("cache/stale", b"stale"),
                directory("cache/old"),
                file("cache/old/stale", b"stale"),
                directory("app"),
                file("app/gone", b"old"),
            ),
            layer(
                file("cache/before", b"before"),
                directory("cache/old"),
                file("cache/old/new", b"new"),
                file("cache/.wh..wh..opq"),
                file("cache/after", b"after"),
                file("app/gone", b"new"),
                file("app/.wh.gone"),
            ),
        )
        self.assertEqual(sorted(os.listdir(self.root / "cache")), ["after", "before", "old"])
        self.assertEqual(os.listdir(self.root / "cache/old"), ["new"])
        self.assertEqual((self.root / "cache/before").read_bytes(), b"before")
        self.assertEqual((self.root / "app/gone").read_bytes(), b"new")

    def test_a_layer_larger_than_the_limit_is_refused(self) -> None:
        small = UnpackLimits(max_layer_bytes=200_000)
        first = layer(file("first", b"first"))
        self.assertRefused(
            "more than the limit of 200000 bytes",
            first,
            layer(file("noise", os.urandom(300_000))),
            limits=small,
        )
        self.unpack(first, layer(file("noise", os.urandom(100_000))), limits=small)
        self.assertEqual(sorted(os.listdir(self.root)), ["first", "noise"])

    def test_an_image_larger_than_the_limit_is_refused(self) -> None:
        self.assertRefused(
            "the image's layers unpack to more than the limit of 250000 bytes",
            layer(file("one", os.urandom(150_000))),
            layer(file("two", os.urandom(150_000))),
            limits=UnpackLimits(max_image_bytes=250_000),
        )

    def test_an_absurd_gzip_ratio_is_refused(self) -> None:
        self.assertRefused(
            "of gzip expand more than 100 times: a decompression bomb",
            layer(file("zeros", bytes(2 << 20))),
            limits=UnpackLimits(max_ratio=100, ratio_from_bytes=64 << 10),
        )

    def test_a_gzip_bomb_is_refused_with_the_default_limits(self) -> None:
        """256 MiB of zeros in about 250 KiB: refused once 64 MiB have come out (gunzipped
        whole in memory, it unpacked to an empty root)."""
        self.assertRefused("of gzip expand more than 200 times", _zeros_gzip(256 << 20))

    def test_too_many_entries_are_refused(self) -> None:
        self.assertRefused(
            "more than 20 entries",
            layer(*[file(f"f{i}") for i in range(30)]),
            limits=UnpackLimits(max_entries=20),
        )

    def test_a_layer_that_is_not_gzip_is_refused(self) -> None:
        self.assertRefused("not a gzip stream", b"not gzip at all")
        self.assertRefused("not a gzip stream", gzip.compress(b"cut short")[:-6])

    def test_an_ordinary_image_unpacks_as_before(self) -> None:
        self.unpack(
            layer(
                directory("usr"),
                directory("usr/lib"),
                symlink("lib", "usr/lib"),
                symlink("usr/lib64", "../lib"),
                file("usr/lib/libc", b"libc"),
                hardlink("usr/lib/libc.hard", "usr/lib/libc"),
                symlink("etc/localtime", "/usr/share/zoneinfo/UTC"),
                directory("app"),
                file("app/old", b"old"),
                directory("cache"),
                file("cache/stale", b"stale"),
            ),
            layer(
                file("lib/libm", b"libm"),  # through the relative symlink, inside the root
                file("usr/lib64/libz", b"libz"),  # `..`, then `lib`: inside the root still
                file("app/.wh.old"),
                file("cache/.wh..wh..opq"),
                file("cache/fresh", b"fresh"),
            ),
        )
        self.assertEqual((self.root / "usr/lib/libm").read_bytes(), b"libm")
        self.assertEqual((self.root / "usr/lib/libz").read_bytes(), b"libz")
        self.assertEqual(os.readlink(self.root / "lib"), "usr/lib")
        self.assertEqual(os.readlink(self.root / "etc/localtime"), "/usr/share/zoneinfo/UTC")
        libc = self.root / "usr/lib/libc"
        self.assertTrue(os.path.samefile(libc, self.root / "usr/lib/libc.hard"))
        self.assertEqual(os.listdir(self.root / "app"), [])
        self.assertEqual(os.listdir(self.root / "cache"), ["fresh"])
        self.assertEqual(libc.stat().st_mode & 0o7777, 0o644)


def _zeros_gzip(size: int) -> bytes:
    """A gzip stream of `size` zero bytes, made a MiB at a time."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, 31)  # 31: gzip framing
    chunk = bytes(1 << 20)
    parts = [compressor.compress(chunk) for _ in range(size // len(chunk))]
    return b"".join([*parts, compressor.flush()])


if __name__ == "__main__":
    absltest.main()
