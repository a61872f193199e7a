"""BuildGrid's disk storage, with every blob whole before its name appears.

BuildGrid 0.9.1's DiskStorage writes a blob to a buffered temporary file and hard-links it to
its name in the CAS before the buffer is flushed (`bulk_update_blobs`, which Bazel and casd use
for small blobs, and `commit_write`). Until the `with` block closes the file, the blob exists
with fewer bytes, often none. A FindMissingBlobs in that window says it is there, and a read
gets the short bytes: a worker's casd then refuses it ("Could not read blob with digest ...")
and the action fails with exit 34. CI's remote build failed so once, on a 98-byte blob. Here
the bytes reach the file before the link, as `stream_write_blob` already does.
"""

from __future__ import annotations

import contextlib
import errno
import io
import os
import tempfile
from typing import IO

from buildgrid._protos.build.bazel.remote.execution.v2.remote_execution_pb2 import Digest
from buildgrid._protos.google.rpc import code_pb2
from buildgrid._protos.google.rpc.status_pb2 import Status
from buildgrid.server.cas.storage.disk import DiskStorage
from buildgrid.server.exceptions import StorageFullError

CHUNK_BYTES = 1 << 20
FULL = (errno.ENOSPC, errno.EFBIG)


class WholeBlobDiskStorage(DiskStorage):
    """DiskStorage whose writes flush before they link; reads and the layout are its own."""

    def _write_whole(self, digest: Digest, source: IO[bytes]) -> None:
        """Copies `source` to a temporary file, flushed, then links it to the blob's name (a
        blob already there is the same bytes: its name is their digest)."""
        with tempfile.NamedTemporaryFile("wb", dir=self.temp_path) as temporary:
            while data := source.read(CHUNK_BYTES):
                temporary.write(data)
            temporary.flush()
            with contextlib.suppress(FileExistsError):
                os.link(temporary.name, self._get_object_path(digest))

    def commit_write(self, digest: Digest, write_session: IO[bytes]) -> None:
        write_session.seek(0)
        try:
            self._write_whole(digest, write_session)
        except OSError as error:
            if error.errno in FULL:
                raise StorageFullError(f"Disk Error: {error.errno}") from error
            raise

    def bulk_update_blobs(self, blobs: list[tuple[Digest, bytes]]) -> list[Status]:
        statuses = []
        for digest, data in blobs:
            try:
                self._write_whole(digest, io.BytesIO(data))
                statuses.append(Status(code=code_pb2.OK))
            except OSError as error:
                code = code_pb2.RESOURCE_EXHAUSTED if error.errno in FULL else code_pb2.INTERNAL
                statuses.append(Status(code=code, message=f"Disk Error: {error}"))
        return statuses
