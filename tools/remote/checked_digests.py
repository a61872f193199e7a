"""A CAS storage that refuses any digest whose hash is not lowercase SHA-256 hex.

BuildGrid 0.9.1 checks only a hash's length before its disk storage joins the hash into a file
path, so a 64-character "hash" like "..////.../etc/shadow" reads, writes or stats any path the
server can reach. This wrapper sits in front of the real storage: every digest any service
(CAS, ByteStream, action cache, scheduler) hands to storage is checked first, and a bad one is
InvalidArgumentError, which BuildGrid answers with INVALID_ARGUMENT.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Sequence
from typing import IO

from buildgrid._protos.build.bazel.remote.execution.v2.remote_execution_pb2 import Digest
from buildgrid._protos.google.rpc.status_pb2 import Status
from buildgrid.server.cas.storage.storage_abc import StorageABC
from buildgrid.server.exceptions import InvalidArgumentError
from buildgrid.server.settings import HASH_LENGTH

HEX_HASH = re.compile(f"[0-9a-f]{{{HASH_LENGTH}}}")


def check(digests: Iterable[Digest]) -> None:
    for digest in digests:
        if not HEX_HASH.fullmatch(digest.hash) or digest.size_bytes < 0:
            raise InvalidArgumentError(
                f"invalid digest {digest.hash!r}/{digest.size_bytes}: the hash must be "
                f"{HASH_LENGTH} lowercase hex digits and the size at least 0"
            )


class CheckedDigestStorage(StorageABC):
    """Delegates to `storage` once every digest of a call is checked."""

    TYPE = "CheckedDigest"

    def __init__(self, storage: StorageABC) -> None:
        self.storage = storage

    def start(self) -> None:
        self.storage.start()

    def stop(self) -> None:
        self.storage.stop()

    def has_blob(self, digest: Digest) -> bool:
        check([digest])
        return self.storage.has_blob(digest)

    def get_blob(self, digest: Digest) -> IO[bytes] | None:
        check([digest])
        return self.storage.get_blob(digest)

    def stream_read_blob(
        self, digest: Digest, chunk_size: int, offset: int = 0, limit: int = 0
    ) -> Iterator[bytes]:
        check([digest])
        return self.storage.stream_read_blob(digest, chunk_size, offset, limit)

    def stream_write_blob(self, digest: Digest, chunks: Iterator[bytes]) -> None:
        check([digest])
        self.storage.stream_write_blob(digest, chunks)

    def delete_blob(self, digest: Digest) -> None:
        check([digest])
        self.storage.delete_blob(digest)

    def commit_write(self, digest: Digest, write_session: IO[bytes]) -> None:
        check([digest])
        self.storage.commit_write(digest, write_session)

    def bulk_delete(self, digests: list[Digest]) -> list[str]:
        check(digests)
        return self.storage.bulk_delete(digests)

    def missing_blobs(self, digests: list[Digest]) -> list[Digest]:
        check(digests)
        return self.storage.missing_blobs(digests)

    def bulk_update_blobs(self, blobs: list[tuple[Digest, bytes]]) -> list[Status]:
        check(digest for digest, _ in blobs)
        return self.storage.bulk_update_blobs(blobs)

    def bulk_read_blobs(self, digests: list[Digest]) -> dict[str, bytes]:
        check(digests)
        return self.storage.bulk_read_blobs(digests)

    def support_chunk_mappings(self) -> bool:
        return self.storage.support_chunk_mappings()

    def get_chunk_digests(self, blob_digest: Digest) -> list[Digest] | None:
        check([blob_digest])
        return self.storage.get_chunk_digests(blob_digest)

    def record_spliced_blob(self, blob_digest: Digest, chunk_digests: Sequence[Digest]) -> None:
        check([blob_digest, *chunk_digests])
        self.storage.record_spliced_blob(blob_digest, chunk_digests)

    def bulk_get_chunk_digests(self, blob_digests: Sequence[Digest]) -> dict[str, list[Digest]]:
        check(blob_digests)
        return self.storage.bulk_get_chunk_digests(blob_digests)
