"""Traces and metrics of every call, exported over OTLP/gRPC by the standard OTEL_* settings.
Imported only when OTEL_EXPORTER_OTLP_ENDPOINT is set (telemetry.py).

- Each call gets a SERVER span `package.Service/Method`, child of the caller's span from
  `traceparent`, else from `X-Cloud-Trace-Context` (trace_context.py reads both, for the log
  line too). Sampling is the SDK's, by OTEL_TRACES_SAMPLER / OTEL_TRACES_SAMPLER_ARG: the
  parent's flag when there is one (parentbased_*). The span ends with the code the client got,
  the same code as the call's log line (call_boundary.CallRecord.on_done decides it once).
  The span is recorded by the runtime and exported by the SDK (server_span.py: the SDK's span
  cost more per call than traces may).
- Metrics: `rpc.server.duration` (ms) by service, method and code, aggregated by the runtime
  (call_durations.py: the SDK's histogram cost more per call than metrics may);
  `rpc.server.active_calls`. Exported every OTEL_METRIC_EXPORT_INTERVAL ms.
- `service.name` is OTEL_SERVICE_NAME, else Cloud Run's K_SERVICE.
- OTEL_METRICS_EXPORTER=none turns the metrics off (spans only); `otlp`, the default, keeps them.
- A collector that is down or slow never holds a call: spans wait in a bounded queue that a
  thread of the SDK exports; past its size (OTEL_BSP_MAX_QUEUE_SIZE) they are dropped. Spans
  dropped, or lost in a failed export, are counted and reported in one warning per minute at
  most, instead of the SDK's line per failure; at shutdown a last warning counts the rest,
  with the spans the server stopped waiting for (span_drops.py).
"""

from __future__ import annotations

import functools
import logging
import os
import threading
import urllib.parse

import grpc
from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import OTLPMetricExporter
from opentelemetry.metrics import CallbackOptions, Observation
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.sdk.util.instrumentation import InstrumentationScope

from python.channels.client_tracing import method_parts
from python.runtime import logs
from python.runtime.call_durations import CallDurations, WithCallDurations, exemplar_filter
from python.runtime.server_span import ServerSpan, ServerSpans
from python.runtime.span_drops import BoundedQueue, CountingExporter, Drops, KeepExportErrors
from python.runtime.span_encoding import CachingSpanExporter
from python.runtime.trace_context import TraceContext

logger = logging.getLogger("telemetry")

# Spans waiting for the exporter (OTEL_BSP_MAX_QUEUE_SIZE, the SDK's default); past this
# many, new spans are dropped and counted.
MAX_QUEUED_SPANS = 2048
# Spans per export unless OTEL_BSP_MAX_EXPORT_BATCH_SIZE says otherwise: the SDK's 512 spans
# and their encoded batch held 3 MiB more of peak RSS under load than 128 (docs/observability.md).
EXPORT_BATCH_SPANS = 128
# How long the exporters get to send what is left when the server stops (Cloud Run allows
# 10 s after SIGTERM, most of it for the calls' drain).
SHUTDOWN_SECONDS = 1.0
# The exporter logs each failure: its lines are kept for the drop warning instead.
_SDK_EXPORTER_LOGGER = "opentelemetry.exporter.otlp.proto.grpc.exporter"
# The API's TraceState parser logs here the tracestate member it refuses (_QuietTraceState).
_API_TRACE_STATE_LOGGER = "opentelemetry.trace.span"
# Codes that mark a server span as failed (OpenTelemetry's gRPC conventions): the server's
# faults, not the caller's.
_SPAN_ERRORS = frozenset(
    {
        grpc.StatusCode.UNKNOWN,
        grpc.StatusCode.DEADLINE_EXCEEDED,
        grpc.StatusCode.UNIMPLEMENTED,
        grpc.StatusCode.INTERNAL,
        grpc.StatusCode.UNAVAILABLE,
        grpc.StatusCode.DATA_LOSS,
    }
)
# The method named in metrics for calls answered UNIMPLEMENTED: their path is the client's to
# choose, and one series per path would grow without bound.
_OTHER = "_OTHER"
_ACTIVE_ATTRIBUTES = {"rpc.system": "grpc"}
# The instrumentation scope of the runtime's spans and metrics.
SCOPE = InstrumentationScope("python.runtime")


class _QuietTraceState(logging.Filter):
    """Drops the API's warning about a tracestate member it refused: the member is a header
    value, which never reaches a log; the header is then dropped whole, as W3C asks."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith("Member doesn't match")


class _HashedOnce(Resource):
    """The process's resource, hashed once. The OTLP encoder groups spans by resource, so it
    hashes the resource of every span it sends, and the SDK's hash JSON-encodes the attributes
    each time: 5.6 us per span, a fifth of the span's encoding (docs/observability.md). The
    attributes are immutable, so the hash cannot go stale."""

    def __init__(self, resource: Resource) -> None:
        super().__init__(resource.attributes, resource.schema_url)
        self._hash = super().__hash__()

    def __hash__(self) -> int:
        return self._hash


def _resource() -> Resource:
    attributes = {}
    if not os.environ.get("OTEL_SERVICE_NAME") and (service := os.environ.get("K_SERVICE")):
        attributes[SERVICE_NAME] = service
    return _HashedOnce(Resource.create(attributes))


def _queue_size() -> int:
    setting = os.environ.get("OTEL_BSP_MAX_QUEUE_SIZE")
    if not setting:
        return MAX_QUEUED_SPANS
    if setting.isdigit() and int(setting) > 0:
        return int(setting)
    logger.warning(
        "OTEL_BSP_MAX_QUEUE_SIZE=%r is not a positive integer: using %d", setting, MAX_QUEUED_SPANS
    )
    return MAX_QUEUED_SPANS


def _export_batch_size(queue_size: int) -> int | None:
    """None when OTEL_BSP_MAX_EXPORT_BATCH_SIZE is set: the SDK reads it."""
    if os.environ.get("OTEL_BSP_MAX_EXPORT_BATCH_SIZE"):
        return None
    return min(EXPORT_BATCH_SPANS, queue_size)


def _metrics_exported() -> bool:
    setting = os.environ.get("OTEL_METRICS_EXPORTER", "otlp").strip().lower()
    if setting not in ("otlp", "none"):
        logger.warning("OTEL_METRICS_EXPORTER=%r is not otlp or none: using otlp", setting)
    return setting != "none"


def _parent(trace_context: TraceContext | None) -> otel_context.Context | None:
    if trace_context is None or not trace_context.span_id:
        return None
    flags = trace.TraceFlags.SAMPLED if trace_context.sampled else trace.TraceFlags.DEFAULT
    if trace_context.random:
        flags |= trace.TraceFlags.RANDOM_TRACE_ID
    parent = trace.SpanContext(
        int(trace_context.trace_id, 16),
        int(trace_context.span_id, 16),
        is_remote=True,
        trace_flags=trace.TraceFlags(flags),
        # An invalid tracestate is dropped whole (W3C), by the API's parser, which logs the
        # member it refused: _QuietTraceState keeps that header value out of the logs.
        trace_state=trace.TraceState.from_header([trace_context.state])
        if trace_context.state
        else None,
    )
    return trace.set_span_in_context(trace.NonRecordingSpan(parent))


def _peer_attributes(peer: str) -> dict[str, str | int]:
    """gRPC's `ipv4:10.0.0.1:5000` / `ipv6:%5B::1%5D:5000` as network.peer.* attributes."""
    kind, _, address = peer.partition(":")
    if kind not in ("ipv4", "ipv6"):
        return {}
    if "%" in address:  # ipv6's brackets
        address = urllib.parse.unquote(address)
    host, _, port = address.rpartition(":")
    attributes: dict[str, str | int] = {"network.peer.address": host.strip("[]")}
    if port.isdigit():
        attributes["network.peer.port"] = int(port)
    return attributes


# Per method (and code): the same few strings and dicts for every call. Bounded, as the path
# of a call answered UNIMPLEMENTED is the client's to choose.
_METHODS_CACHED = 1024


@functools.lru_cache(maxsize=_METHODS_CACHED)
def _span_parts(method: str) -> tuple[str, dict[str, str]]:
    """The span's name and its attributes that name the method (the SDK copies them)."""
    service, name = method_parts(method)
    return f"{service}/{name}", {"rpc.system": "grpc", "rpc.service": service, "rpc.method": name}


# Per method and peer: a connection's calls share its peer, so its address is parsed and the
# dicts merged once per connection rather than per call.
_PEERS_CACHED = 1024


@functools.lru_cache(maxsize=_PEERS_CACHED)
def _start_parts(method: str, peer: str) -> tuple[str, dict[str, str | int]]:
    """The span's name and all its attributes at the start (the SDK copies them)."""
    span_name, attributes = _span_parts(method)
    return span_name, {**attributes, **_peer_attributes(peer)}


@functools.lru_cache(maxsize=_METHODS_CACHED)
def _duration_attributes(method: str, code: int) -> dict[str, str | int]:
    service, name = (_OTHER, _OTHER) if method == _OTHER else method_parts(method)
    return {
        "rpc.system": "grpc",
        "rpc.service": service,
        "rpc.method": name,
        "rpc.grpc.status_code": code,
    }


class ServerTelemetry:
    """The span and metrics of every call; made once per process by start()."""

    def __init__(
        self,
        tracer_provider: TracerProvider,
        spans: BoundedQueue,
        meter_provider: MeterProvider | None,
        durations: CallDurations | None,
    ) -> None:
        self._spans = spans
        self._meter_provider = meter_provider
        self._server_spans = ServerSpans(tracer_provider, SCOPE, spans.on_end)
        self._active = 0
        self._durations = durations
        if meter_provider is None:
            return  # OTEL_METRICS_EXPORTER=none: no metric is made or recorded
        # Calls in flight: an int here, read at each export (an observable up-down counter),
        # since the SDK's add() costs several microseconds per call.
        meter_provider.get_meter(SCOPE.name).create_observable_up_down_counter(
            "rpc.server.active_calls",
            [self._observe_active],
            unit="{call}",
            description="gRPC calls being served.",
        )

    def start(self, method: str, trace_context: TraceContext | None, peer: str) -> trace.Span:
        """The call's span, made current so that calls it makes (the relay's) are its children."""
        span_name, attributes = _start_parts(method, peer)
        span = self._server_spans.start(span_name, _parent(trace_context), attributes)
        # Each call runs in a task of its own: the context ends with it, so nothing detaches.
        otel_context.attach(trace.set_span_in_context(span))
        self._active += 1  # on the event loop's thread only, as end()
        return span

    def end(self, span: trace.Span, method: str, code: grpc.StatusCode, seconds: float) -> None:
        """Ends the call's span with the code the client got, and counts the call."""
        if isinstance(span, ServerSpan):  # recording (a span not sampled is not)
            span.set_call_attribute("rpc.grpc.status_code", code.value[0])
            if code in _SPAN_ERRORS:
                span.set_status(trace.Status(trace.StatusCode.ERROR, code.name))
            span.end()
        self._active -= 1
        if self._durations is None:
            return
        if code is grpc.StatusCode.UNIMPLEMENTED:
            method = _OTHER
        self._durations.record(method, code.value[0], seconds * 1000, span.get_span_context())

    def _observe_active(self, options: CallbackOptions) -> list[Observation]:
        return [Observation(self._active, _ACTIVE_ATTRIBUTES)]

    def shutdown(self) -> None:
        """Sends what is left, for SHUTDOWN_SECONDS at most: the SDK's own shutdown waits on
        the exporter (OTEL_EXPORTER_OTLP_TIMEOUT, 10 s by default), so it runs in a thread of
        its own that the process does not wait for past that. Then warns of every span that
        was not sent, written out at once: Cloud Run's SIGKILL may follow soon after."""

        def send_the_rest() -> None:
            self._spans.shutdown()
            if self._meter_provider is not None:
                self._meter_provider.shutdown()

        sending = threading.Thread(target=send_the_rest, name="telemetry-shutdown", daemon=True)
        sending.start()
        sending.join(SHUTDOWN_SECONDS)
        self._spans.report_unsent()
        logs.flush()


def start() -> ServerTelemetry:
    """Builds the providers from the OTEL_* settings and makes them the process's own."""
    drops = Drops()
    logging.getLogger(_SDK_EXPORTER_LOGGER).addFilter(KeepExportErrors(drops))
    logging.getLogger(_API_TRACE_STATE_LOGGER).addFilter(_QuietTraceState())
    resource = _resource()
    queue_size = _queue_size()
    exporter = CountingExporter(CachingSpanExporter())
    batches = BatchSpanProcessor(
        exporter, max_queue_size=queue_size, max_export_batch_size=_export_batch_size(queue_size)
    )
    spans = BoundedQueue(batches, queue_size, drops)
    exporter.queue = spans
    # The server shuts the providers down itself, bounded: the SDK's own exit hook could wait
    # 30 s on a collector that does not answer.
    tracer_provider = TracerProvider(
        resource=resource,
        shutdown_on_exit=False,
        active_span_processor=spans,  # the provider calls only the SpanProcessor interface
    )
    meter_provider = durations = None
    if _metrics_exported():
        metrics = WithCallDurations(OTLPMetricExporter(), SCOPE)
        durations = CallDurations(_duration_attributes, exemplar_filter(), metrics.delta)
        metrics.durations = durations
        meter_provider = MeterProvider(
            resource=resource,
            metric_readers=[PeriodicExportingMetricReader(metrics)],
            shutdown_on_exit=False,
        )
    trace.set_tracer_provider(tracer_provider)
    return ServerTelemetry(tracer_provider, spans, meter_provider, durations)
