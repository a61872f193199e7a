"""TestService.Relay: Unary on an upstream, through python/channels as a service of the kit
calls another (plaintext h2c, or TLS with a Google ID token), with the caller's trace headers
and remaining time. The upstream's status comes back as it was, with a detail naming the
upstream: the runtime's tests check the channel, the token and the trace, not a policy of
mapping statuses, which is each service's own."""

from __future__ import annotations

import asyncio

import grpc
from kittest.v1 import test_service_pb2 as pb
from kittest.v1 import test_service_pb2_grpc

from python.channels import channels
from python.channels.auth import AuthError

# Headers passed on so that both servers' logs and spans share one trace.
PROPAGATED_HEADERS = ("traceparent", "tracestate", "x-cloud-trace-context")
# For callers that set no deadline: the relay must not wait forever on its upstream.
UPSTREAM_TIMEOUT_SECONDS = 30.0


class Relaying:
    """Relay's handler, given `upstream` (a Connection) or None when the server has none."""

    def __init__(self, upstream: channels.Connection | None) -> None:
        self._upstream = upstream
        self._stub: test_service_pb2_grpc.TestServiceStub | None = None
        # Concurrent first calls wait for one channel instead of each building their own.
        self._lock = asyncio.Lock()

    async def Relay(
        self, request: pb.RelayRequest, context: grpc.aio.ServicerContext
    ) -> pb.RelayResponse:
        if self._upstream is None:
            await context.abort(grpc.StatusCode.FAILED_PRECONDITION, "no --upstream configured")
        stub = await self._upstream_stub(context)
        metadata = [
            (key, value)
            for key, value in context.invocation_metadata() or ()
            if key in PROPAGATED_HEADERS
        ]
        remaining = context.time_remaining()
        timeout = UPSTREAM_TIMEOUT_SECONDS if remaining is None else max(remaining, 0.0)
        try:
            response = await stub.Unary(request.request, timeout=timeout, metadata=metadata)
        except grpc.aio.AioRpcError as error:
            await context.abort(
                error.code(),
                f"upstream {self._upstream.server} answered {error.code().name}: {error.details()}",
            )
        return pb.RelayResponse(response=response)

    async def _upstream_stub(
        self, context: grpc.aio.ServicerContext
    ) -> test_service_pb2_grpc.TestServiceStub:
        async with self._lock:
            if self._stub is None:
                try:
                    # Minting the first ID token is network I/O: off the event loop.
                    credentials = await asyncio.to_thread(
                        channels.channel_credentials, self._upstream
                    )
                except (ValueError, AuthError) as error:
                    await context.abort(grpc.StatusCode.FAILED_PRECONDITION, f"upstream: {error}")
                # One attempt per call: retrying is the caller's to decide.
                self._stub = test_service_pb2_grpc.TestServiceStub(
                    channels.open_aio_channel(self._upstream, credentials, retries=False)
                )
            return self._stub
