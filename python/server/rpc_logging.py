"""One log line per RPC, and no stack trace ever sent to a client.

Every method handler is wrapped once, when its service registers (handler_wrapping.py). The
wrapper times the call, reads its final status, and logs
method, code, latency, peer and the caller's trace. A handler that raises an unexpected
exception is answered with INTERNAL and a fixed message; the traceback goes only to the log.
Metadata values are never logged (they carry tokens); only the trace headers are read.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import grpc

from python.server import invoker_auth, trace_context
from python.server.handler_wrapping import Wrap, map_behavior
from python.server.logs import FIELDS_ATTRIBUTE

logger = logging.getLogger("rpc")
# Which calls get a log line (--rpc_logs). Unexpected exceptions are always logged.
ALL, ERRORS, NONE = "all", "errors", "none"
INTERNAL_ERROR_DETAILS = "internal error"
_CODES = {code.value[0]: code for code in grpc.StatusCode}
# Codes that mean the server, not the caller, is at fault: logged as errors.
_SERVER_FAULTS = frozenset(
    {grpc.StatusCode.INTERNAL, grpc.StatusCode.UNKNOWN, grpc.StatusCode.DATA_LOSS}
)


def logging_wrap(project: str | None, which: str = ALL) -> Wrap:
    """Wraps a handler to log its calls (`which`: all, errors, none) and hide its crashes."""

    def wrap(method: str, handler: grpc.RpcMethodHandler) -> grpc.RpcMethodHandler:
        log = _logger(method, project, which)
        return map_behavior(
            handler,
            lambda behavior: (
                _wrap_stream(behavior, log)
                if inspect.isasyncgenfunction(behavior)
                else _wrap_unary(behavior, log)
            ),
        )

    return wrap


Log = Callable[[grpc.aio.ServicerContext, grpc.StatusCode, float], None]


def _logger(method: str, project: str | None, which: str) -> Log:
    def log(context: grpc.aio.ServicerContext, code: grpc.StatusCode, started: float) -> None:
        if which == NONE or (which == ERRORS and code is grpc.StatusCode.OK):
            return
        fields: dict[str, object] = {
            "method": method,
            "code": code.name,
            "latency": f"{time.perf_counter() - started:.6f}s",
            "peer": context.peer(),
        }
        if caller := invoker_auth.CALLER.get():
            fields["caller"] = caller
        if project and (trace := trace_context.from_metadata(context.invocation_metadata())):
            fields.update(trace.log_fields(project))
        level = logging.ERROR if code in _SERVER_FAULTS else logging.INFO
        logger.log(level, "%s %s", method, code.name, extra={FIELDS_ATTRIBUTE: fields})

    return log


def _context_code(context: grpc.aio.ServicerContext) -> grpc.StatusCode | None:
    """The code a handler set (set_code or abort), if any."""
    code = context.code()
    if code is None or isinstance(code, grpc.StatusCode):
        return code
    return _CODES.get(code, grpc.StatusCode.UNKNOWN)


def _failure_code(context: grpc.aio.ServicerContext, error: BaseException) -> grpc.StatusCode:
    if isinstance(error, grpc.aio.AbortError):
        return _context_code(context) or grpc.StatusCode.UNKNOWN
    if isinstance(error, asyncio.CancelledError):
        return grpc.StatusCode.CANCELLED
    return grpc.StatusCode.INTERNAL


async def _hide_if_unexpected(context: grpc.aio.ServicerContext, error: BaseException) -> None:
    """An exception the handler did not mean (not an abort or a cancel): its traceback to the
    log, INTERNAL with a fixed message to the client (this raises AbortError)."""
    if not isinstance(error, (grpc.aio.AbortError, asyncio.CancelledError)):
        logger.error("unhandled exception in handler", exc_info=error)
        await context.abort(grpc.StatusCode.INTERNAL, INTERNAL_ERROR_DETAILS)


# Coroutines: unary responses, and streams answered with context.write() (health's Watch).
def _wrap_unary(behavior: Callable[..., Awaitable[Any]], log: Log) -> Callable[..., Awaitable[Any]]:
    async def wrapped(request: Any, context: grpc.aio.ServicerContext) -> Any:
        started, code = time.perf_counter(), None
        try:
            return await behavior(request, context)
        except BaseException as error:
            code = _failure_code(context, error)
            await _hide_if_unexpected(context, error)
            raise
        finally:
            log(context, code or _context_code(context) or grpc.StatusCode.OK, started)

    return wrapped


def _wrap_stream(behavior: Callable[..., Any], log: Log) -> Callable[..., Any]:
    async def wrapped(request: Any, context: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
        started, code = time.perf_counter(), None
        try:
            async for response in behavior(request, context):
                yield response
        except BaseException as error:
            code = _failure_code(context, error)
            await _hide_if_unexpected(context, error)
            raise
        finally:
            log(context, code or _context_code(context) or grpc.StatusCode.OK, started)

    return wrapped
