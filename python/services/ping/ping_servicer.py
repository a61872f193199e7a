"""PingService: echoes a message with a per-process call count and the time it arrived, and
relays a ping to an upstream instance of the same service.

The index lets a caller see which calls one instance answered (and, on Cloud Run, when a new
instance took over); the timestamp is the server's clock, for latency and clock-skew checks.

The relay's failures must not read as the caller's. A caller can act on three things: retry
later (UNAVAILABLE), its own deadline (DEADLINE_EXCEEDED), or nothing it can fix (INTERNAL); so
every upstream status becomes one of those (`UPSTREAM_STATUS`), with a detail naming the
upstream and the status it answered. Retrying is left to the caller alone: the relay's channel
makes one attempt per call, so a call costs at most as many upstream attempts as the caller's
own retry policy makes (5 with the kit's client), not that times the relay's.
"""

from __future__ import annotations

import asyncio
import dataclasses
import itertools

import grpc
from grpc import StatusCode
from ping.v1 import ping_pb2, ping_pb2_grpc

from python.channels import auth, channels
from python.channels.auth import AuthError

RELAYED_SUFFIX = " (relayed)"
# For callers that set no deadline: the relay must not wait forever on its upstream.
DEFAULT_UPSTREAM_TIMEOUT_SECONDS = 30.0
# Headers passed on to the upstream so that both services' logs share one trace.
_PROPAGATED_HEADERS = ("traceparent", "tracestate", "x-cloud-trace-context")

# What the caller gets for each status the upstream answered.
UPSTREAM_STATUS: dict[StatusCode, StatusCode] = {
    # Transient: another attempt, likely on another instance, may succeed. CANCELLED here is
    # the upstream cutting the call (a caller's own cancel ends this handler first);
    # RESOURCE_EXHAUSTED an upstream that is overloaded or over a quota.
    StatusCode.UNAVAILABLE: StatusCode.UNAVAILABLE,
    StatusCode.CANCELLED: StatusCode.UNAVAILABLE,
    StatusCode.RESOURCE_EXHAUSTED: StatusCode.UNAVAILABLE,
    StatusCode.ABORTED: StatusCode.UNAVAILABLE,
    # The upstream got the caller's remaining time: running out is the caller's deadline.
    StatusCode.DEADLINE_EXCEEDED: StatusCode.DEADLINE_EXCEEDED,
    # The relay's hop was refused: the relay's identity or deployment is wrong, not the
    # caller's credentials. Not UNAVAILABLE: retrying cannot fix it, and callers retry that.
    StatusCode.UNAUTHENTICATED: StatusCode.INTERNAL,
    StatusCode.PERMISSION_DENIED: StatusCode.INTERNAL,
    # The upstream rejected what the relay sent, or is not the service the relay expects: the
    # caller's own request was fine, so none of these is passed on as the caller's error.
    StatusCode.INVALID_ARGUMENT: StatusCode.INTERNAL,
    StatusCode.FAILED_PRECONDITION: StatusCode.INTERNAL,
    StatusCode.OUT_OF_RANGE: StatusCode.INTERNAL,
    StatusCode.NOT_FOUND: StatusCode.INTERNAL,
    StatusCode.ALREADY_EXISTS: StatusCode.INTERNAL,
    StatusCode.UNIMPLEMENTED: StatusCode.INTERNAL,
    StatusCode.INTERNAL: StatusCode.INTERNAL,
    StatusCode.UNKNOWN: StatusCode.INTERNAL,
    StatusCode.DATA_LOSS: StatusCode.INTERNAL,
}


@dataclasses.dataclass(frozen=True)
class Upstream:
    """Where SendUpstream relays to.

    - `host[:port]` (443 when omitted): TLS with a Google ID token for `https://<host>` in
      Authorization, or with `insecure`, plaintext h2c and no token.
    - A service's URL: `https://...` on Cloud Run, or a local Cloud Run's
      `http://SERVICE.PROJECT.localhost:PORT` (h2c to loopback): an ID token for that URL in
      X-Serverless-Authorization, the header Cloud Run verifies when a request has it.
    """

    target: str
    insecure: bool = False

    def __post_init__(self) -> None:
        if "://" in self.target and self.insecure:
            raise ValueError("a URL says its own scheme: http:// is h2c, https:// is TLS")
        try:
            self.connection.target  # noqa: B018 (parses host[:port]; ValueError if it cannot)
        except ValueError:
            raise ValueError(
                f"{self.target!r} is neither host[:port] nor an http(s)://HOST[:PORT] URL"
            ) from None

    @property
    def connection(self) -> channels.Connection:
        if "://" in self.target:
            return channels.connection_to_url(self.target, auth.SERVERLESS_AUTHORIZATION)
        return channels.Connection(server=self.target, insecure=self.insecure)


class PingServicer(ping_pb2_grpc.PingServiceServicer):
    def __init__(self, upstream: Upstream | None = None) -> None:
        # next() on a count is atomic under the GIL, so concurrent handlers never share an index.
        self._calls = itertools.count(1)
        self._upstream = upstream
        self._upstream_stub: ping_pb2_grpc.PingServiceStub | None = None
        # Concurrent first calls wait for one channel instead of each building their own.
        self._upstream_lock = asyncio.Lock()

    async def Send(
        self, request: ping_pb2.Request, context: grpc.aio.ServicerContext | None
    ) -> ping_pb2.Response:
        pong = ping_pb2.Pong(index=next(self._calls), message=request.message)
        pong.received_on.GetCurrentTime()
        return ping_pb2.Response(pong=pong)

    async def SendUpstream(
        self, request: ping_pb2.Request, context: grpc.aio.ServicerContext
    ) -> ping_pb2.Response:
        if self._upstream is None:
            await context.abort(
                StatusCode.FAILED_PRECONDITION,
                "no upstream configured: start the server with --upstream or GRPC_PING_HOST",
            )
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
                UPSTREAM_STATUS[error.code()],
                f"upstream {self._upstream.target} answered {error.code().name}: {error.details()}",
            )
        response.pong.message += RELAYED_SUFFIX
        return response

    async def _stub(self, context: grpc.aio.ServicerContext) -> ping_pb2_grpc.PingServiceStub:
        async with self._upstream_lock:
            if self._upstream_stub is None:
                connection = self._upstream.connection
                try:
                    # Minting the first ID token is network I/O: off the event loop.
                    credentials = await asyncio.to_thread(channels.channel_credentials, connection)
                except (ValueError, AuthError, ImportError) as error:
                    # ImportError: google-auth is imported here, at the first relayed call.
                    await context.abort(StatusCode.FAILED_PRECONDITION, f"upstream: {error}")
                # One channel for the life of the server: connections and their HTTP/2 streams
                # are reused, and gRPC reconnects by itself after the upstream closes them
                # (GOAWAY).
                self._upstream_stub = ping_pb2_grpc.PingServiceStub(
                    channels.open_aio_channel(connection, credentials, retries=False)
                )
            return self._upstream_stub


def _deadline(context: grpc.aio.ServicerContext) -> float:
    """The caller's remaining time, so the upstream call ends no later than the caller's."""
    remaining = context.time_remaining()
    return DEFAULT_UPSTREAM_TIMEOUT_SECONDS if remaining is None else max(remaining, 0.0)
