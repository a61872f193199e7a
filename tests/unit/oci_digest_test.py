"""bazel/tools/oci.py's digests: a digest names a file in a layout, so anything but `sha256:`
and 64 lowercase hex digits, whole, is refused; bytes that come in chunks get the digest and size
of the whole; the empty config's digest is the one the OCI spec gives."""

import hashlib

from absl.testing import absltest

from bazel.tools.oci import EMPTY_DIGEST, StreamDigest, is_digest, sha256_digest

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


class StreamDigestTest(absltest.TestCase):
    def test_chunks_have_the_digest_and_size_of_the_whole(self) -> None:
        chunks = [b"a layer ", b"", b"in three", b" chunks"]
        stream = StreamDigest()
        for chunk in chunks:
            stream.update(chunk)
        whole = b"".join(chunks)
        self.assertEqual(stream.digest, "sha256:" + hashlib.sha256(whole).hexdigest())
        self.assertEqual(stream.digest, sha256_digest(whole))
        self.assertEqual(stream.size, len(whole))

    def test_no_bytes_have_the_digest_of_nothing(self) -> None:
        stream = StreamDigest()
        self.assertEqual(stream.digest, "sha256:" + hashlib.sha256(b"").hexdigest())
        self.assertEqual(stream.size, 0)

    def test_the_empty_config_has_the_specs_digest(self) -> None:
        # The OCI image spec's empty descriptor (manifest.md, "Guidance for an Empty Descriptor").
        self.assertEqual(
            EMPTY_DIGEST, "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"
        )


if __name__ == "__main__":
    absltest.main()
