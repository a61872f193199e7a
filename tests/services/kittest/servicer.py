"""TestService's calls that answer by themselves: each does what its request asks (wait, fail,
send so many bytes), so that a test of the runtime states the call it needs in the request and
no sample's behaviour stands between the test and the runtime."""

from __future__ import annotations

import asyncio
import itertools
import os
from collections.abc import AsyncIterator

import grpc
from kittest.v1 import test_service_pb2 as pb
from kittest.v1 import test_service_pb2_grpc

# Status codes by number, as UnaryRequest.fail_with names them.
STATUS_BY_NUMBER = {code.value[0]: code for code in grpc.StatusCode}


class TestServicer(test_service_pb2_grpc.TestServiceServicer):
    """Unary and the three streaming kinds; Relay is relay.Relaying's."""

    def __init__(self) -> None:
        # next() on a count is atomic under the GIL: concurrent calls never share an index.
        self._calls = itertools.count(1)

    async def Unary(
        self, request: pb.UnaryRequest, context: grpc.aio.ServicerContext
    ) -> pb.UnaryResponse:
        await asyncio.sleep(request.delay.ToTimedelta().total_seconds())
        if request.fail_with:
            code = STATUS_BY_NUMBER.get(request.fail_with)
            if code is None:
                await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "no such status code")
            await context.abort(code, f"told to answer {code.name}")
        return pb.UnaryResponse(
            message=request.message,
            index=next(self._calls),
            payload=b"x" * request.reply_bytes,
            pid=os.getpid(),
        )

    async def ServerStream(
        self, request: pb.ServerStreamRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[pb.ServerStreamResponse]:
        interval = request.interval.ToTimedelta().total_seconds()
        for index in range(request.count):
            if index and interval:
                await asyncio.sleep(interval)
            yield pb.ServerStreamResponse(index=index, payload=b"x" * request.reply_bytes)

    async def ClientStream(
        self,
        request_iterator: AsyncIterator[pb.ClientStreamRequest],
        context: grpc.aio.ServicerContext,
    ) -> pb.ClientStreamResponse:
        summary = pb.ClientStreamResponse()
        async for request in request_iterator:
            summary.messages += 1
            summary.bytes += request.ByteSize()
        return summary

    async def Bidi(
        self, request_iterator: AsyncIterator[pb.BidiRequest], context: grpc.aio.ServicerContext
    ) -> AsyncIterator[pb.BidiResponse]:
        async for request in request_iterator:
            yield pb.BidiResponse(message=request.message)
