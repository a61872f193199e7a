"""One log line per RPC, and no stack trace ever sent to a client.

An interceptor wraps every handler: it times the call, reads its final status, and logs method,
code, latency, peer and the caller's trace. A handler that raises an unexpected exception is
answered with INTERNAL and a fixed message; the traceback goes only to the log. Metadata values
are never logged (they carry tokens); only the trace headers are read.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import grpc

from python.server import trace_context
from python.server.logs import FIELDS_ATTRIBUTE

logger = logging.getLogger("rpc")
INTERNAL_ERROR_DETAILS = "internal error"
_CODES = {code.value[0]: code for code in grpc.StatusCode}


def _code_of(context: grpc.aio.ServicerContext, default: grpc.StatusCode) -> grpc.StatusCode:
    code = context.code()
    if code is None:
        return default
    return code if isinstance(code, grpc.StatusCode) else _CODES.get(code, grpc.StatusCode.UNKNOWN)


class RpcLoggingInterceptor(grpc.aio.ServerInterceptor):
    def __init__(self, project: str | None) -> None:
        self._project = project

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        handler = await continuation(handler_call_details)
        if handler is None:
            return None
        method = handler_call_details.method
        trace = trace_context.from_metadata(handler_call_details.invocation_metadata)
        log = self._logger(method, trace)
        if handler.unary_unary:
            return handler._replace(unary_unary=_wrap_unary(handler.unary_unary, log))
        if handler.stream_unary:
            return handler._replace(stream_unary=_wrap_unary(handler.stream_unary, log))
        if handler.unary_stream:
            return handler._replace(unary_stream=_wrap_stream(handler.unary_stream, log))
        return handler._replace(stream_stream=_wrap_stream(handler.stream_stream, log))

    def _logger(
        self, method: str, trace: trace_context.TraceContext | None
    ) -> Callable[[grpc.aio.ServicerContext, grpc.StatusCode, float], None]:
        def log(context: grpc.aio.ServicerContext, code: grpc.StatusCode, started: float) -> None:
            fields: dict[str, object] = {
                "method": method,
                "code": code.name,
                "latency": f"{time.perf_counter() - started:.6f}s",
                "peer": context.peer(),
            }
            if trace and self._project:
                fields.update(trace.log_fields(self._project))
            level = logging.ERROR if code in _SERVER_FAULTS else logging.INFO
            logger.log(level, "%s %s", method, code.name, extra={FIELDS_ATTRIBUTE: fields})

        return log


# Codes that mean the server, not the caller, is at fault: logged as errors.
_SERVER_FAULTS = frozenset(
    {grpc.StatusCode.INTERNAL, grpc.StatusCode.UNKNOWN, grpc.StatusCode.DATA_LOSS}
)

Log = Callable[[grpc.aio.ServicerContext, grpc.StatusCode, float], None]


async def _answer_internal(context: grpc.aio.ServicerContext, method_error: Exception) -> None:
    logger.error("unhandled exception in handler", exc_info=method_error)
    await context.abort(grpc.StatusCode.INTERNAL, INTERNAL_ERROR_DETAILS)


def _wrap_unary(behavior: Callable[..., Awaitable[Any]], log: Log) -> Callable[..., Awaitable[Any]]:
    async def wrapped(request: Any, context: grpc.aio.ServicerContext) -> Any:
        started, code = time.perf_counter(), grpc.StatusCode.OK
        try:
            return await behavior(request, context)
        except grpc.aio.AbortError:
            code = _code_of(context, grpc.StatusCode.UNKNOWN)
            raise
        except BaseException as error:
            code = _failure_code(error)
            if code is grpc.StatusCode.INTERNAL:
                await _answer_internal(context, error)
            raise
        finally:
            log(context, _code_of(context, code) if code is grpc.StatusCode.OK else code, started)

    return wrapped


def _wrap_stream(behavior: Callable[..., Any], log: Log) -> Callable[..., Any]:
    if not inspect.isasyncgenfunction(behavior):
        # Handlers that answer with context.write() (the health service's Watch) are coroutines.
        return _wrap_unary(behavior, log)

    async def wrapped(request: Any, context: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
        started, code = time.perf_counter(), grpc.StatusCode.OK
        try:
            async for response in behavior(request, context):
                yield response
        except grpc.aio.AbortError:
            code = _code_of(context, grpc.StatusCode.UNKNOWN)
            raise
        except BaseException as error:
            code = _failure_code(error)
            if code is grpc.StatusCode.INTERNAL:
                await _answer_internal(context, error)
            raise
        finally:
            log(context, _code_of(context, code) if code is grpc.StatusCode.OK else code, started)

    return wrapped


def _failure_code(error: BaseException) -> grpc.StatusCode:
    if isinstance(error, asyncio.CancelledError):
        return grpc.StatusCode.CANCELLED
    return grpc.StatusCode.INTERNAL
