"""Whether the server exports traces and metrics, decided once at start by the standard
OpenTelemetry settings.

With OTEL_EXPORTER_OTLP_ENDPOINT unset nothing is made and OpenTelemetry is never imported:
its import costs the cold start, and a call then pays one `is None` test. Set, otel_export.py
builds the exporters (OTLP over gRPC) and the span and metrics of each call.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from python.channels import client_tracing

if TYPE_CHECKING:
    from python.runtime.otel_export import ServerTelemetry


def from_environment() -> ServerTelemetry | None:
    """The process's telemetry, or None when no endpoint is set. Call once per process."""
    if not client_tracing.enabled():
        return None
    from python.runtime import otel_export  # imports OpenTelemetry: only when on

    return otel_export.start()
