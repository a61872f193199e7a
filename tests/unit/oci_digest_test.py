"""bazel/tools/oci.py's digest check: a digest names a file in a layout, so anything but
`sha256:` and 64 lowercase hex digits, whole, is refused."""

from absl.testing import absltest

from bazel.tools.oci import is_digest

GOOD = "sha256:" + "0123456789abcdef" * 4


class DigestTest(absltest.TestCase):
    def test_a_sha256_digest_is_one(self) -> None:
        self.assertTrue(is_digest(GOOD))

    def test_anything_else_is_not(self) -> None:
        for value in (
            GOOD + "\n",  # `$` alone would match before it
            "\n" + GOOD,
            GOOD + "0",
            GOOD[:-1],
            GOOD.upper(),
            GOOD.replace("sha256", "sha512"),
            "sha256:../../" + GOOD[13:],
            GOOD.encode(),
            None,
        ):
            with self.subTest(value=value):
                self.assertFalse(is_digest(value))


if __name__ == "__main__":
    absltest.main()
