"""How much a client may send on one request stream: a count of messages and a total of bytes.

gRPC limits each message (--max_receive_message_mib), not a stream of them: without a limit a
client-streaming or bidirectional call may send forever, and every message costs the server
work (and memory, where a handler keeps what it read). Past either limit the call fails with
RESOURCE_EXHAUSTED and a message that names the limit.

The server applies its limit (--max_stream_messages, --max_stream_mib) to the request stream of
every method (`wrap`). A handler may set a tighter one of its own on its request iterator:

    async for note in stream_limits.limited(request_iterator, context, StreamLimit(1000)):

Only the request iterator is counted: a handler that reads with `context.read()` is not.
"""

from __future__ import annotations

import dataclasses
import inspect
from collections.abc import AsyncIterator
from typing import Any, TypeVar

import grpc
from google.protobuf.message import Message

from python.runtime.handler_wrapping import Behavior, Wrap, map_behavior

DEFAULT_MAX_MESSAGES = 10_000
DEFAULT_MAX_BYTES = 64 * 1024 * 1024

Request = TypeVar("Request")


@dataclasses.dataclass(frozen=True)
class StreamLimit:
    """At most `messages` messages and `bytes` bytes (serialized) on one request stream."""

    messages: int = DEFAULT_MAX_MESSAGES
    bytes: int = DEFAULT_MAX_BYTES


async def limited(
    requests: AsyncIterator[Request], context: grpc.aio.ServicerContext, limit: StreamLimit
) -> AsyncIterator[Request]:
    """The requests of `requests` (messages, or bytes for a method without a parser) until one
    goes past `limit`: then the call is aborted with RESOURCE_EXHAUSTED (AbortError raises in
    the handler that iterates)."""
    count = size = 0
    async for request in requests:
        count += 1
        size += request.ByteSize() if isinstance(request, Message) else len(request)
        if count > limit.messages:
            await context.abort(
                grpc.StatusCode.RESOURCE_EXHAUSTED,
                f"request stream of more than {limit.messages} messages",
            )
        if size > limit.bytes:
            await context.abort(
                grpc.StatusCode.RESOURCE_EXHAUSTED,
                f"request stream of more than {limit.bytes} bytes",
            )
        yield request


def wrap(limit: StreamLimit) -> Wrap:
    """Wraps handlers so that every request stream is `limited` to `limit`."""

    def limit_requests(behavior: Behavior) -> Behavior:
        if inspect.isasyncgenfunction(behavior):

            async def streaming(requests: Any, context: grpc.aio.ServicerContext) -> Any:
                async for response in behavior(limited(requests, context, limit), context):
                    yield response

            return streaming

        async def unary(requests: Any, context: grpc.aio.ServicerContext) -> Any:
            return await behavior(limited(requests, context, limit), context)

        return unary

    def wrap_handler(method: str, handler: grpc.RpcMethodHandler) -> grpc.RpcMethodHandler:
        if not handler.request_streaming:
            return handler
        return map_behavior(handler, limit_requests)

    return wrap_handler
