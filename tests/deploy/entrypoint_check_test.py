"""The image build refuses an entrypoint its layers do not have: what a service gets when its
`interpreter` is not the base's Python (Debian's base has /usr/bin/python3.13, no python3)."""

from __future__ import annotations

from absl.testing import absltest

from bazel.tools.oci_image import EntrypointError, check_entrypoint, resolve

# Paths as layers list them: files (None) and symlinks (their targets); directories implied.
MERGED_USR = {
    "bin": "usr/bin",
    "usr/bin/python3.13": None,
    "usr/bin/py": "python3.13",
    "usr/local/bin/python": "/usr/bin/py",
    "usr/bin/loop": "loop",
    "usr/bin/dangling": "nowhere",
    "app/python/services/ping/main.py": None,
}


class EntrypointCheckTest(absltest.TestCase):
    def test_files_and_symlinks_resolve(self) -> None:
        for path, expected in (
            ("/usr/bin/python3.13", "usr/bin/python3.13"),
            ("/bin/python3.13", "usr/bin/python3.13"),  # through a directory symlink
            ("/usr/bin/py", "usr/bin/python3.13"),  # a relative link
            ("/usr/local/bin/python", "usr/bin/python3.13"),  # absolute, then relative
            ("/usr/bin/../bin/python3.13", "usr/bin/python3.13"),
        ):
            with self.subTest(path):
                self.assertEqual(resolve(path, MERGED_USR), expected)

    def test_what_leads_nowhere(self) -> None:
        for path in ("/usr/bin/python3", "/usr/bin/dangling", "/usr/bin/loop", "/opt/x"):
            with self.subTest(path):
                self.assertIsNone(resolve(path, MERGED_USR))

    def test_the_check_names_what_the_layers_have(self) -> None:
        check_entrypoint(["/bin/python3.13", "/app/python/services/ping/main.py"], MERGED_USR)
        check_entrypoint([], MERGED_USR)  # no entrypoint: nothing to check
        with self.assertRaises(EntrypointError) as caught:
            check_entrypoint(["/usr/bin/python3", "/app/main.py"], MERGED_USR)
        self.assertEqual(
            str(caught.exception),
            "the entrypoint /usr/bin/python3 is not a file of the image's layers; "
            "the layers have /usr/bin/python3.13",
        )
        with self.assertRaises(EntrypointError):
            check_entrypoint(["/usr/bin"], MERGED_USR)  # a directory is not a program


if __name__ == "__main__":
    absltest.main()
