"""The CLIENT span of each unary call through an asyncio channel, and the `traceparent` that
makes the callee's span its child. Imported only when telemetry is on (client_tracing.py).

The span's parent is the current span (the call the server is serving); with no provider set
(a program that exports nothing) the API makes non-recording spans and nothing is sent.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import grpc
from opentelemetry import trace
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from python.channels.client_tracing import method_parts

_TRACER = trace.get_tracer("python.channels")
_PROPAGATOR = TraceContextTextMapPropagator()
# Headers this span's own context replaces: an incoming call's would name the wrong parent.
_REPLACED = frozenset({"traceparent", "tracestate"})


class TracingInterceptor(grpc.aio.UnaryUnaryClientInterceptor):
    async def intercept_unary_unary(
        self,
        continuation: Callable[[grpc.aio.ClientCallDetails, Any], Awaitable[Any]],
        client_call_details: grpc.aio.ClientCallDetails,
        request: Any,
    ) -> Any:
        service, method = method_parts(client_call_details.method)
        attributes = {"rpc.system": "grpc", "rpc.service": service, "rpc.method": method}
        span = _TRACER.start_span(
            f"{service}/{method}", kind=trace.SpanKind.CLIENT, attributes=attributes
        )
        headers: dict[str, str] = {}
        _PROPAGATOR.inject(headers, context=trace.set_span_in_context(span))
        metadata = [
            (key, value)
            for key, value in client_call_details.metadata or ()
            if key not in _REPLACED
        ]
        details = grpc.aio.ClientCallDetails(
            client_call_details.method,
            client_call_details.timeout,
            grpc.aio.Metadata(*metadata, *headers.items()),
            client_call_details.credentials,
            client_call_details.wait_for_ready,
        )
        code = grpc.StatusCode.UNKNOWN
        try:
            call = await continuation(details, request)
            await call  # the same outcome the caller gets when it awaits the call
            code = grpc.StatusCode.OK
        except grpc.aio.AioRpcError as error:
            code = error.code()
            raise
        except asyncio.CancelledError:
            code = grpc.StatusCode.CANCELLED
            raise
        finally:
            span.set_attribute("rpc.grpc.status_code", code.value[0])
            if code is not grpc.StatusCode.OK:
                span.set_status(trace.Status(trace.StatusCode.ERROR, code.name))
            span.end()
        return call
