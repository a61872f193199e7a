"""CheckedDigestStorage: a digest whose hash is not lowercase hex never reaches the storage.

BuildGrid 0.9.1's DiskStorage joins a digest's hash into a path after checking only its length;
these tests put a real DiskStorage behind the check and try a path, upper case and a bad size
through every method that takes a digest, then show that good digests still work.
"""

from __future__ import annotations

import hashlib
import io
import os
import shutil
import tempfile
from pathlib import Path

from absl.testing import absltest
from buildgrid._protos.build.bazel.remote.execution.v2.remote_execution_pb2 import Digest
from buildgrid.server.cas.storage.disk import DiskStorage
from buildgrid.server.exceptions import InvalidArgumentError

from tools.remote.checked_digests import CheckedDigestStorage


def digest(data: bytes) -> Digest:
    return Digest(hash=hashlib.sha256(data).hexdigest(), size_bytes=len(data))


class CheckedDigestStorageTest(absltest.TestCase):
    def setUp(self) -> None:
        self.root = Path(tempfile.mkdtemp(dir=os.environ.get("TEST_TMPDIR")))
        self.storage = CheckedDigestStorage(DiskStorage(str(self.root / "cas")))
        # A file outside the CAS that a path-like hash would reach: a short path (a hash has
        # 64 characters), so not in TEST_TMPDIR.
        outside_dir = tempfile.mkdtemp(dir="/tmp")
        self.addCleanup(shutil.rmtree, outside_dir)
        self.outside = Path(outside_dir) / "outside"
        self.outside.write_bytes(b"not a blob")

    def bad_digests(self) -> dict[str, Digest]:
        path = str(self.outside)
        good = digest(b"hello")
        return {
            "path": Digest(hash=".." + "/" * (62 - len(path)) + path, size_bytes=10),
            "upper case": Digest(hash=good.hash.upper(), size_bytes=5),
            "too short": Digest(hash=good.hash[:-1], size_bytes=5),
            "negative size": Digest(hash=good.hash, size_bytes=-1),
        }

    def test_every_method_refuses_a_bad_digest(self) -> None:
        storage = self.storage
        calls = {
            "has_blob": lambda d: storage.has_blob(d),
            "get_blob": lambda d: storage.get_blob(d),
            "stream_read_blob": lambda d: list(storage.stream_read_blob(d, 1024)),
            "stream_write_blob": lambda d: storage.stream_write_blob(d, iter([b"x"])),
            "delete_blob": lambda d: storage.delete_blob(d),
            "commit_write": lambda d: storage.commit_write(d, io.BytesIO(b"x")),
            "bulk_delete": lambda d: storage.bulk_delete([d]),
            "missing_blobs": lambda d: storage.missing_blobs([digest(b"ok"), d]),
            "bulk_update_blobs": lambda d: storage.bulk_update_blobs([(d, b"x")]),
            "bulk_read_blobs": lambda d: storage.bulk_read_blobs([d]),
        }
        for kind, bad in self.bad_digests().items():
            for name, call in calls.items():
                with (
                    self.subTest(kind=kind, method=name),
                    self.assertRaisesRegex(InvalidArgumentError, "invalid digest"),
                ):
                    call(bad)
        # Nothing outside the CAS was read, written or removed.
        self.assertEqual(self.outside.read_bytes(), b"not a blob")

    def test_good_digests_reach_the_storage(self) -> None:
        blob = b"hello"
        self.assertEqual(self.storage.missing_blobs([digest(blob)]), [digest(blob)])
        self.storage.bulk_update_blobs([(digest(blob), blob)])
        self.assertTrue(self.storage.has_blob(digest(blob)))
        self.assertEqual(self.storage.bulk_read_blobs([digest(blob)]), {digest(blob).hash: blob})
        self.assertEqual(b"".join(self.storage.stream_read_blob(digest(blob), 2)), blob)


if __name__ == "__main__":
    absltest.main()
