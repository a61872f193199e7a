"""WholeBlobDiskStorage: a blob has all its bytes at the moment its name appears in the CAS.

The moment is caught by wrapping os.link: right after the link, the test reads the new name as
a concurrent FindMissingBlobs and read would. BuildGrid's own DiskStorage fails this (its
buffered bytes come after the link), which shows the check can fail.
"""

from __future__ import annotations

import hashlib
import io
import os
import tempfile
from pathlib import Path
from unittest import mock

from absl.testing import absltest
from buildgrid._protos.build.bazel.remote.execution.v2.remote_execution_pb2 import Digest
from buildgrid._protos.google.rpc import code_pb2
from buildgrid.server.cas.storage.disk import DiskStorage

from tools.remote.whole_blob_storage import WholeBlobDiskStorage

SMALL = bytes(range(98))  # the size of the blob CI's remote build could not read
LARGE = os.urandom(3 << 20)  # past the copy's chunk and Python's buffer


def digest(data: bytes) -> Digest:
    return Digest(hash=hashlib.sha256(data).hexdigest(), size_bytes=len(data))


class WholeBlobDiskStorageTest(absltest.TestCase):
    def setUp(self) -> None:
        self.root = Path(tempfile.mkdtemp(dir=os.environ.get("TEST_TMPDIR")))

    def seen_at_link(self, storage: DiskStorage, write) -> list[bytes]:
        """The bytes each new blob name showed right after its link, during `write`."""
        seen: list[bytes] = []
        real_link = os.link

        def link_then_read(source: str, name: str) -> None:
            real_link(source, name)
            seen.append(Path(name).read_bytes())

        with mock.patch("os.link", side_effect=link_then_read):
            write(storage)
        return seen

    def test_bulk_update_blobs_links_whole_blobs(self) -> None:
        storage = WholeBlobDiskStorage(str(self.root))
        seen = self.seen_at_link(
            storage, lambda s: s.bulk_update_blobs([(digest(SMALL), SMALL), (digest(LARGE), LARGE)])
        )
        self.assertEqual(seen, [SMALL, LARGE])

    def test_commit_write_links_a_whole_blob(self) -> None:
        storage = WholeBlobDiskStorage(str(self.root))
        for data in (SMALL, LARGE):
            session = io.BytesIO(data)
            session.seek(len(data))  # where a write session is left: at its end
            seen = self.seen_at_link(
                storage, lambda s, data=data, session=session: s.commit_write(digest(data), session)
            )
            self.assertEqual(seen, [data])

    def test_buildgrids_own_storage_links_before_its_bytes(self) -> None:
        seen = self.seen_at_link(
            DiskStorage(str(self.root)), lambda s: s.bulk_update_blobs([(digest(SMALL), SMALL)])
        )
        self.assertEqual(seen, [b""])

    def test_blobs_read_back_and_a_second_write_is_ok(self) -> None:
        storage = WholeBlobDiskStorage(str(self.root))
        for _ in range(2):
            statuses = storage.bulk_update_blobs([(digest(SMALL), SMALL)])
            self.assertEqual([s.code for s in statuses], [code_pb2.OK])
        self.assertEqual(storage.bulk_read_blobs([digest(SMALL)]), {digest(SMALL).hash: SMALL})
        self.assertEqual(storage.missing_blobs([digest(SMALL), digest(LARGE)]), [digest(LARGE)])
        self.assertEqual(os.listdir(storage.temp_path), [])  # no temporary file left


if __name__ == "__main__":
    absltest.main()
