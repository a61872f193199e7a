"""The server's boundary with each call: the status the client got, decided once for the log
line and the span, requests that do not parse, responses too large to send, and no stack trace
ever sent to a client. The line itself is rpc_logging.py's.

Every method handler is wrapped once, when its service registers (handler_wrapping.py).

- What the log line needs from the call (peer, trace headers) is read when the call starts:
  grpc.aio frees the call when it ends, and a context touched after that crashes the process.
- The line is written when grpc.aio reports the call over (`context.add_done_callback`), with
  the code the client got: UNAVAILABLE for calls still running when shutdown cut them,
  DEADLINE_EXCEEDED once the deadline has passed (a status sent later is never read), else the
  handler's code, or CANCELLED when the call ended before the handler did (a client that
  stopped reading or went away) unless that end was the client's deadline (below).
- A client's deadline reaches the server as a cancel: RST_STREAM CANCEL, the frame a grpc-core
  client also sends for a cancel by hand. It comes before the server's copy of the deadline runs
  out, by as long as the request took from the client writing grpc-timeout to the server reading
  it (a busy or cold client: up to 0.1 s measured), which the server cannot know, plus what
  grpc-core's rounding up of grpc-timeout adds (under 1% of it). The rule: a cancel is the
  client's deadline when the time the call had left was at most the time it had spent at the
  handler, and at most CLIENT_DEADLINE_LEAD_SECONDS plus TIMEOUT_ROUNDING of the call's time.
  So a cancel by hand that late is logged DEADLINE_EXCEEDED, and a deadline whose request took
  longer, CANCELLED (docs/deadlines-and-flakes.md).
- A request that does not parse is the caller's error: INVALID_ARGUMENT and a WARNING line, no
  traceback. Requests are parsed inside the wrapper (unary) or by a parser that raises an error
  of ours (streams), so grpc.aio never answers UNKNOWN with the parser's text.
- A response larger than --max_send_message_mib is RESOURCE_EXHAUSTED, said here: gRPC would
  fail the call below the handler, and the log would never know.
- An unexpected exception is INTERNAL with a fixed message; its traceback goes only to the log.

With telemetry on (telemetry.py), the call's span starts with the record and ends in on_done
with the same code as the line, whose span id is then the span's; with --rpc_logs=none the
record is kept for the span alone.
"""

from __future__ import annotations

import asyncio
import dataclasses
import inspect
import time
from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING, Any

import grpc
from google.protobuf.message import DecodeError

# What grpc.aio raises when a call broke under a handler (a write or read on a cancelled call).
from grpc._cython.cygrpc import ExecuteBatchError

from python.runtime import trace_context
from python.runtime.rpc_logging import ALL, CURRENT, NONE, MethodLog, logger

if TYPE_CHECKING:
    from opentelemetry.trace import Span

    from python.runtime.otel_export import ServerTelemetry

Metadata = tuple[tuple[str, str | bytes], ...]
INTERNAL_ERROR_DETAILS = "internal error"
# How far ahead of the server's copy a client's deadline may run out and still be taken for the
# deadline (the module docstring's rule): 10x the most a loaded machine showed, plus the most
# grpc-core rounds a timeout up (3 significant digits: 12.345 s is sent as 12400m).
CLIENT_DEADLINE_LEAD_SECONDS = 1.0
TIMEOUT_ROUNDING = 0.01
# How long a bidirectional call that streamed responses waits at its end for a cancellation;
# and, when its end fell where a client's deadline ends calls (cancelled_by_deadline), at most
# how long: on a loaded machine the cancellation of a call that the client's deadline broke
# came later than 2 ms, and the call was logged OK where the client saw DEADLINE_EXCEEDED.
BROKEN_STREAM_SETTLE_SECONDS = 0.002
DEADLINE_SETTLE_SECONDS = 0.05
_CODES = {code.value[0]: code for code in grpc.StatusCode}


class UnparsableRequest(Exception):
    """A request message that is not valid protobuf for its method."""


def cancelled_by_deadline(elapsed: float, remaining: float) -> bool:
    """Whether a cancel `elapsed` seconds after the handler started, with `remaining` seconds of
    the server's copy of the deadline left, was the client's deadline (the module docstring)."""
    lead = CLIENT_DEADLINE_LEAD_SECONDS + TIMEOUT_ROUNDING * (elapsed + remaining)
    return remaining <= min(elapsed, lead)


class CallRecord:
    """One call, from its start to the code the client got: what its log line and span need,
    read while the call runs, and the line written once when it is over."""

    __slots__ = ("_boundary", "_log", "caller", "code", "metadata", "peer", "span", "started")

    def __init__(
        self, log: MethodLog, boundary: Boundary, context: grpc.aio.ServicerContext
    ) -> None:
        self._log = log
        self._boundary = boundary
        self.started = time.perf_counter()
        self.peer = context.peer()
        self.span: Span | None = None
        # The headers, kept for the trace fields of a line that may never be written (errors
        # only): they are parsed then.
        self.metadata: Metadata | None = None
        telemetry = boundary.telemetry
        if telemetry is not None:
            trace = trace_context.from_metadata(context.invocation_metadata())
            self.span = telemetry.start(log.name, trace, self.peer)
        elif log.project:
            self.metadata = context.invocation_metadata()
        self.caller: str | None = None
        # The code the handler ended with; None while it runs, and for good when the call
        # ended before the handler did.
        self.code: grpc.StatusCode | None = None

    def on_done(self, context: grpc.aio.ServicerContext) -> None:
        """grpc.aio's done callback. Reads only what outlives the call: its deadline."""
        cut_at = self._boundary.calls_cut_at
        remaining = context.time_remaining()
        if cut_at is not None and time.monotonic() >= cut_at:
            code = grpc.StatusCode.UNAVAILABLE
        elif remaining == 0 or (
            self.code is None
            and remaining is not None
            and cancelled_by_deadline(time.perf_counter() - self.started, remaining)
        ):
            code = grpc.StatusCode.DEADLINE_EXCEEDED
        else:
            code = self.code or grpc.StatusCode.CANCELLED
        if self.span is not None:
            telemetry = self._boundary.telemetry
            telemetry.end(self.span, self._log.name, code, time.perf_counter() - self.started)
        self._log.log(code, self)

    @property
    def method(self) -> str:
        return self._log.name


class Boundary:
    """The wrap of every handler (see the module docstring), and what the server tells it.

    `which`: all, errors, none; `max_response_bytes`: the largest response the server sends;
    `telemetry`: each call's span and metrics, None when off.
    """

    def __init__(
        self,
        project: str | None,
        which: str = ALL,
        max_response_bytes: int | None = None,
        telemetry: ServerTelemetry | None = None,
    ) -> None:
        self.project = project
        self.which = which
        self.max_response_bytes = max_response_bytes
        self.telemetry = telemetry
        # When shutdown cancels the calls still running (monotonic seconds); None until then.
        self.calls_cut_at: float | None = None

    def __call__(self, method: str, handler: grpc.RpcMethodHandler) -> grpc.RpcMethodHandler:
        logged = (
            MethodLog(method, self.project, self.which)
            if self.which != NONE or self.telemetry
            else None
        )
        parse = _raising_parser(handler.request_deserializer)
        if handler.request_streaming:
            # grpc.aio parses each streamed request inside the handler's `async for`, where the
            # wrapper sees the parser's error.
            kind = "stream_stream" if handler.response_streaming else "stream_unary"
            how = _How(None, self, logged, self.max_response_bytes, settle=True)
            return handler._replace(
                request_deserializer=parse, **{kind: _wrap(getattr(handler, kind), how)}
            )
        # A single request is parsed before the handler runs: the wrapper parses it instead.
        kind = "unary_stream" if handler.response_streaming else "unary_unary"
        how = _How(parse, self, logged, self.max_response_bytes, settle=False)
        return handler._replace(
            request_deserializer=None, **{kind: _wrap(getattr(handler, kind), how)}
        )


Parse = Callable[[bytes], Any]


def _raising_parser(parse: Parse | None) -> Parse:
    if parse is None:
        return lambda data: data

    def parse_or_raise(data: bytes) -> Any:
        try:
            return parse(data)
        except DecodeError as error:
            raise UnparsableRequest(str(error)) from None

    return parse_or_raise


@dataclasses.dataclass(frozen=True)
class _How:
    """How one method's calls are wrapped: the same for every call."""

    parse: Parse | None  # the request parser, when the wrapper parses (single requests)
    boundary: Boundary
    logged: MethodLog | None  # None: no record (--rpc_logs=none, telemetry off)
    limit: int | None  # the largest response, in bytes
    settle: bool  # request-streaming: check how the request stream ended


def _start(how: _How, context: grpc.aio.ServicerContext) -> CallRecord | None:
    if how.logged is None:
        return None
    record = CallRecord(how.logged, how.boundary, context)
    CURRENT.set(record)
    context.add_done_callback(record.on_done)
    return record


async def _failed(
    record: CallRecord | None, context: grpc.aio.ServicerContext, error: BaseException
) -> None:
    """Sets the code a handler's exception ends the call with; answers the client when the
    handler did not (this raises AbortError)."""
    if not isinstance(error, Exception) or isinstance(error, ExecuteBatchError):
        return  # cancelled, closed or broken: the call ended first, on_done tells which way
    if isinstance(error, grpc.aio.AbortError):
        if record is not None:
            record.code = _context_code(context) or grpc.StatusCode.UNKNOWN
        return
    if isinstance(error, UnparsableRequest):
        code, details = grpc.StatusCode.INVALID_ARGUMENT, f"request does not parse: {error}"
    elif isinstance(error, _TooLarge):
        code, details = grpc.StatusCode.RESOURCE_EXHAUSTED, str(error)
    else:
        method = record.method if record is not None else "a method"
        logger.error("unhandled exception in %s", method, exc_info=error)
        code, details = grpc.StatusCode.INTERNAL, INTERNAL_ERROR_DETAILS
    try:
        await context.abort(code, details)
    except grpc.aio.AbortError:
        if record is not None:  # only once the client has been told
            record.code = code
        raise


def _finished(record: CallRecord | None, context: grpc.aio.ServicerContext) -> None:
    if record is not None:
        record.code = _context_code(context) or grpc.StatusCode.OK


def _context_code(context: grpc.aio.ServicerContext) -> grpc.StatusCode | None:
    """The code a handler set (set_code or abort), if any. Only while the call runs."""
    code = context.code()
    if code is None or isinstance(code, grpc.StatusCode):
        return code
    return _CODES.get(code, grpc.StatusCode.UNKNOWN)


class _TooLarge(Exception):
    pass


def _check_size(response: Any, limit: int | None) -> None:
    if limit is not None and (size := response.ByteSize()) > limit:
        raise _TooLarge(f"response of {size} bytes is larger than the limit of {limit} bytes")


def _wrap(behavior: Callable[..., Any], how: _How) -> Callable[..., Any]:
    if inspect.isasyncgenfunction(behavior):
        return _stream(behavior, how)
    return _unary(behavior, how)


async def _settled(context: grpc.aio.ServicerContext, record: CallRecord | None) -> None:
    """Raises CancelledError when the request stream ended because the call broke.

    grpc.aio ends a request stream the same way whether the client half-closed it or the call
    broke (a cancel, a message over the limit). A broken call refuses any further batch, so the
    response headers are sent now as a probe. When they have gone out already (a handler that
    streamed responses), a short wait lets the cancellation that grpc.aio sends a broken call's
    task arrive (it comes from the same event in gRPC, a poll later at most) before the
    handler's code is taken as the client's; it costs that long once at the end of such a call.
    """
    try:
        await context.send_initial_metadata(())
    except grpc.aio.UsageError:
        await asyncio.sleep(_settle_seconds(context, record))
    except ExecuteBatchError:
        raise asyncio.CancelledError from None


def _settle_seconds(context: grpc.aio.ServicerContext, record: CallRecord | None) -> float:
    """BROKEN_STREAM_SETTLE_SECONDS; near the call's deadline, up to DEADLINE_SETTLE_SECONDS and
    never past the server's copy of it, so that a client that half-closed there still gets its
    answer in time (and one whose deadline broke the call is then logged by the facts)."""
    remaining = context.time_remaining()
    if record is None or remaining is None:
        return BROKEN_STREAM_SETTLE_SECONDS
    if not cancelled_by_deadline(time.perf_counter() - record.started, remaining):
        return BROKEN_STREAM_SETTLE_SECONDS
    return max(BROKEN_STREAM_SETTLE_SECONDS, min(DEADLINE_SETTLE_SECONDS, remaining))


# Coroutines: unary responses, and streams answered with context.write() (health's Watch).
def _unary(behavior: Callable[..., Any], how: _How) -> Callable[..., Any]:
    async def wrapped(request: Any, context: grpc.aio.ServicerContext) -> Any:
        record = _start(how, context)
        try:
            response = await behavior(how.parse(request) if how.parse else request, context)
            if response is not None:
                _check_size(response, how.limit)
            if how.settle:
                await _settled(context, record)
        except BaseException as error:
            await _failed(record, context, error)
            raise
        _finished(record, context)
        return response

    return wrapped


def _stream(behavior: Callable[..., Any], how: _How) -> Callable[..., Any]:
    async def wrapped(request: Any, context: grpc.aio.ServicerContext) -> AsyncIterator[Any]:
        record = _start(how, context)
        try:
            async for response in behavior(how.parse(request) if how.parse else request, context):
                _check_size(response, how.limit)
                yield response
            if how.settle:
                await _settled(context, record)
        except BaseException as error:
            await _failed(record, context, error)
            raise
        _finished(record, context)

    return wrapped
