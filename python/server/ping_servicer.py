"""PingService: echoes a message with a per-process call count and the time it arrived.

The index lets a caller see which calls one instance answered (and, on Cloud Run, when a new
instance took over); the timestamp is the server's clock, for latency and clock-skew checks.
"""

from __future__ import annotations

import itertools

import grpc
from ping.v1 import ping_pb2, ping_pb2_grpc


class PingServicer(ping_pb2_grpc.PingServiceServicer):
    def __init__(self) -> None:
        # next() on a count is atomic under the GIL, so concurrent handlers never share an index.
        self._calls = itertools.count(1)

    async def Send(
        self, request: ping_pb2.Request, context: grpc.aio.ServicerContext | None
    ) -> ping_pb2.Response:
        pong = ping_pb2.Pong(index=next(self._calls), message=request.message)
        pong.received_on.GetCurrentTime()
        return ping_pb2.Response(pong=pong)
