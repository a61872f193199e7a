"""Client spans for calls a server makes to another (the ping relay's hop upstream).

A relayed call must read as one trace across both services: each call through an asyncio
channel gets a CLIENT span, child of the span of the call being served, and its `traceparent`
goes upstream in place of the one that came in. Only when the server exports telemetry
(OTEL_EXPORTER_OTLP_ENDPOINT set): otherwise nothing here is imported or run, and the relay
passes the incoming trace headers on as they are.
"""

from __future__ import annotations

import os

import grpc

# The standard OpenTelemetry setting that turns telemetry on; unset, none is made.
ENDPOINT_VARIABLE = "OTEL_EXPORTER_OTLP_ENDPOINT"


def enabled() -> bool:
    return bool(os.environ.get(ENDPOINT_VARIABLE))


def interceptors() -> list[grpc.aio.ClientInterceptor]:
    """The interceptors an asyncio channel needs: none when telemetry is off."""
    if not enabled():
        return []
    from python.channels import client_spans  # imports OpenTelemetry: only when on

    return [client_spans.TracingInterceptor()]


def method_parts(method: str | bytes) -> tuple[str, str]:
    """`/pkg.Service/Method` -> (`pkg.Service`, `Method`)."""
    path = method.decode(errors="replace") if isinstance(method, bytes) else method
    service, _, name = path.lstrip("/").partition("/")
    return service, name
