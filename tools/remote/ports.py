"""The launcher's loopback ports: a free one, one in use, and BuildGrid answering on its own.

The client port is plain gRPC on 127.0.0.1, which any local user may bind: before the launcher
sends BuildGrid its client token, it checks who holds the port (docs/remote-service-security.md).
"""

from __future__ import annotations

import socket

import grpc
from buildgrid._protos.build.bazel.remote.execution.v2 import (
    remote_execution_pb2,
    remote_execution_pb2_grpc,
)

from tools.remote.accounts import Account
from tools.remote.credential_helper import listener_uids
from tools.remote.processes import StartError


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def port_in_use(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) == 0


def capabilities_answered(address: str, token: str, owner: Account) -> bool:
    """Whether BuildGrid answers on `address`; its token goes only to a port `owner` holds.

    The port is checked free before BuildGrid starts, but another local user may bind it in the
    seconds before BuildGrid does (its bind then fails): the launcher must not hand that user the
    client token while it waits."""
    port = int(address.rpartition(":")[2])
    owners = listener_uids(port)
    if not owners:
        return False  # not listening yet
    if owners != {owner.uid}:
        strangers = ", ".join(str(uid) for uid in sorted(owners - {owner.uid}))
        raise StartError(
            f"{address} is held by uid {strangers}, not by BuildGrid's user {owner.name}: "
            "its client token was not sent"
        )
    with grpc.insecure_channel(address) as channel:
        stub = remote_execution_pb2_grpc.CapabilitiesStub(channel)
        try:
            stub.GetCapabilities(
                remote_execution_pb2.GetCapabilitiesRequest(),
                timeout=1,
                metadata=[("authorization", f"Bearer {token}")],
            )
        except grpc.RpcError:
            return False
    return True
