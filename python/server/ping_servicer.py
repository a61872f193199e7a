"""PingService: echoes a message with a per-process call count and the time it arrived, and
relays a ping to an upstream instance of the same service.

The index lets a caller see which calls one instance answered (and, on Cloud Run, when a new
instance took over); the timestamp is the server's clock, for latency and clock-skew checks.
"""

from __future__ import annotations

import asyncio
import dataclasses
import itertools

import grpc
from ping.v1 import ping_pb2, ping_pb2_grpc

from python.client import channels
from python.client.auth import AuthError

RELAYED_SUFFIX = " (relayed)"
# For callers that set no deadline: the relay must not wait forever on its upstream.
DEFAULT_UPSTREAM_TIMEOUT_SECONDS = 30.0
# Headers passed on to the upstream so that both services' logs share one trace.
_PROPAGATED_HEADERS = ("traceparent", "tracestate", "x-cloud-trace-context")


@dataclasses.dataclass(frozen=True)
class Upstream:
    """Where SendUpstream relays to: `host[:port]` (443 when omitted), plaintext h2c or TLS with
    a Google ID token for `https://<host>`, as Cloud Run's service-to-service calls need."""

    target: str
    insecure: bool


class PingServicer(ping_pb2_grpc.PingServiceServicer):
    def __init__(self, upstream: Upstream | None = None) -> None:
        # next() on a count is atomic under the GIL, so concurrent handlers never share an index.
        self._calls = itertools.count(1)
        self._upstream = upstream
        self._upstream_stub: ping_pb2_grpc.PingServiceStub | None = None

    async def Send(
        self, request: ping_pb2.Request, context: grpc.aio.ServicerContext | None
    ) -> ping_pb2.Response:
        pong = ping_pb2.Pong(index=next(self._calls), message=request.message)
        pong.received_on.GetCurrentTime()
        return ping_pb2.Response(pong=pong)

    async def SendUpstream(
        self, request: ping_pb2.Request, context: grpc.aio.ServicerContext
    ) -> ping_pb2.Response:
        stub = await self._stub(context)
        metadata = [
            (key, value)
            for key, value in context.invocation_metadata() or ()
            if key in _PROPAGATED_HEADERS
        ]
        try:
            response = await stub.Send(request, timeout=_deadline(context), metadata=metadata)
        except grpc.aio.AioRpcError as error:
            await context.abort(
                error.code(), f"upstream {self._upstream.target}: {error.details()}"
            )
        response.pong.message += RELAYED_SUFFIX
        return response

    async def _stub(self, context: grpc.aio.ServicerContext) -> ping_pb2_grpc.PingServiceStub:
        if self._upstream is None:
            await context.abort(
                grpc.StatusCode.FAILED_PRECONDITION,
                "no upstream configured: start the server with --upstream or GRPC_PING_HOST",
            )
        if self._upstream_stub is None:
            connection = channels.Connection(
                server=self._upstream.target, insecure=self._upstream.insecure
            )
            try:
                # Minting the first ID token is network I/O: off the event loop.
                credentials = await asyncio.to_thread(channels.channel_credentials, connection)
            except (ValueError, AuthError) as error:
                await context.abort(grpc.StatusCode.FAILED_PRECONDITION, f"upstream: {error}")
            # One channel for the life of the server: connections and their HTTP/2 streams are
            # reused, and gRPC reconnects by itself after the upstream closes them (GOAWAY).
            self._upstream_stub = ping_pb2_grpc.PingServiceStub(
                channels.open_aio_channel(connection, credentials)
            )
        return self._upstream_stub


def _deadline(context: grpc.aio.ServicerContext) -> float:
    """The caller's remaining time, so the upstream call ends no later than the caller's."""
    remaining = context.time_remaining()
    return DEFAULT_UPSTREAM_TIMEOUT_SECONDS if remaining is None else max(remaining, 0.0)
