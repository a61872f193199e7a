"""CPU per call of the SDK steps the runtime's telemetry leaves to OpenTelemetry, in one
interpreter: which of them a setting can shrink, before anything is changed for it.

Prints, in µs per call (process CPU, median and min of 9 rounds):
- `Histogram.record` of the runtime's four duration attributes with a sampled span current,
  by exemplar filter (`trace_based`, the SDK's default, against `always_off`);
- the runtime's own histogram (`CallDurations.record`, call_durations.py), which replaced it,
  with a sampled span's context (an exemplar kept per call);
- `Tracer.start_span` + `set_attribute` + `end` (no processor), with the runtime's five start
  attributes and without, under the SDK's default sampler and ALWAYS_ON; and the runtime's own
  span (`ServerSpans.start` + `end`, server_span.py), which replaced it;
- a span's share of encoding and serialising an export of 128 server spans: the SDK's
  `encode_spans` against the runtime's (span_encoding.py: bytes from parts encoded once, read
  back into the message the exporter's stub serialises);
- the runtime's own log line of a call (`MethodLog.log`, JSON lines, a `traceparent` header),
  to /dev/null.

A hot loop in one interpreter: far below the same steps in a serving process (py-spy figures
in docs/observability-cost.md), so compare rows with each other, not with the server's.
"""

from __future__ import annotations

import os
import statistics
import sys
import time
import timeit
from collections.abc import Callable

import grpc
from google.protobuf.message import Message
from opentelemetry import context, trace
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics._internal.exemplar import (
    AlwaysOffExemplarFilter,
    ExemplarFilter,
    TraceBasedExemplarFilter,
)
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.sampling import ALWAYS_ON, DEFAULT_ON, Sampler

from python.runtime import call_durations, logs, otel_export, rpc_logging, server_span
from python.runtime.span_encoding import AttributeCache, export_request

ROUNDS = 9
CALLS = 20_000
# The call whose telemetry is measured: the kit's test service's, as tests/bench:server drives.
SERVICE, METHOD = "kittest.v1.TestService", "Unary"
DURATION_ATTRIBUTES = {
    "rpc.system": "grpc",
    "rpc.service": SERVICE,
    "rpc.method": METHOD,
    "rpc.grpc.status_code": 0,
}
START_ATTRIBUTES = {
    "rpc.system": "grpc",
    "rpc.service": SERVICE,
    "rpc.method": METHOD,
    "network.peer.address": "127.0.0.1",
    "network.peer.port": 51234,
}


def _report(name: str, step: Callable[[], object]) -> None:
    rounds = timeit.repeat(step, number=CALLS, repeat=ROUNDS, timer=time.process_time)
    per_call = [seconds / CALLS * 1e6 for seconds in rounds]
    print(f"{name:50} median {statistics.median(per_call):6.2f}  min {min(per_call):6.2f} µs")


def _record(exemplars: ExemplarFilter) -> Callable[[], None]:
    provider = MeterProvider(metric_readers=[InMemoryMetricReader()], exemplar_filter=exemplars)
    histogram = provider.get_meter("bench").create_histogram("rpc.server.duration", unit="ms")
    return lambda: histogram.record(1.5, DURATION_ATTRIBUTES)


def _durations() -> Callable[[], None]:
    durations = call_durations.CallDurations(lambda *_: DURATION_ATTRIBUTES, "trace_based", False)
    span = trace.get_current_span().get_span_context()
    return lambda: durations.record(f"/{SERVICE}/{METHOD}", 0, 1.5, span)


def _server_span() -> Callable[[], None]:
    """The runtime's own SERVER span (server_span.py), which replaced the SDK's on the call's
    path, with the same five attributes and a status code, into a processor that drops it."""
    spans = server_span.ServerSpans(TracerProvider(), otel_export.SCOPE, lambda _: None)

    def step() -> None:
        span = spans.start(f"{SERVICE}/{METHOD}", None, START_ATTRIBUTES)
        span.set_call_attribute("rpc.grpc.status_code", 0)
        span.end()

    return step


def _encoding(encode: Callable[[list[ReadableSpan]], Message]) -> Callable[[], None]:
    """One span's share of encoding and serialising an export of EXPORT_BATCH_SPANS server
    spans (the exporter thread's work per call)."""
    ended: list[ReadableSpan] = []
    provider = TracerProvider(resource=otel_export._resource())  # hashed once, as the server's
    spans = server_span.ServerSpans(provider, otel_export.SCOPE, ended.append)
    for _ in range(otel_export.EXPORT_BATCH_SPANS):
        span = spans.start(f"{SERVICE}/{METHOD}", None, START_ATTRIBUTES)
        span.set_call_attribute("rpc.grpc.status_code", 0)
        span.end()
    batch = iter(())

    def step() -> None:
        nonlocal batch
        if next(batch, None) is None:  # one export per EXPORT_BATCH_SPANS steps
            encode(ended).SerializeToString()
            batch = iter(range(otel_export.EXPORT_BATCH_SPANS - 1))

    return step


def _span(sampler: Sampler, attributes: dict[str, str | int] | None) -> Callable[[], None]:
    tracer = TracerProvider(sampler=sampler).get_tracer("bench")

    def step() -> None:
        span = tracer.start_span(
            f"{SERVICE}/{METHOD}", kind=trace.SpanKind.SERVER, attributes=attributes
        )
        span.set_attribute("rpc.grpc.status_code", 0)
        span.end()

    return step


class _Record:
    """What MethodLog reads of a call's record (call_boundary.CallRecord), telemetry off."""

    started = time.perf_counter()
    peer = "ipv4:127.0.0.1:51234"
    span = None
    caller = None
    metadata = (("traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"),)


def _log_line() -> Callable[[], None]:
    """The line of each call, written where configure() writes: stdout, here /dev/null."""
    logs.configure(logs.JSON)
    method = rpc_logging.MethodLog(f"/{SERVICE}/{METHOD}", "bench", rpc_logging.ALL)
    record = _Record()
    return lambda: method.log(grpc.StatusCode.OK, record)  # type: ignore[arg-type]


def main() -> None:
    current = TracerProvider().get_tracer("bench").start_span("call")
    context.attach(trace.set_span_in_context(current))  # sampled: what an exemplar needs
    _report("Histogram.record, exemplars trace_based", _record(TraceBasedExemplarFilter()))
    _report("Histogram.record, exemplars always_off", _record(AlwaysOffExemplarFilter()))
    _report("CallDurations.record (the runtime's), exemplars", _durations())
    _report("span start+end, 5 attributes, default sampler", _span(DEFAULT_ON, START_ATTRIBUTES))
    _report("span start+end, 5 attributes, ALWAYS_ON", _span(ALWAYS_ON, START_ATTRIBUTES))
    _report("span start+end, no start attributes", _span(DEFAULT_ON, None))
    _report("ServerSpan start+end (the runtime's), 5 attributes", _server_span())
    _report("export encoding per span, the SDK's encode_spans", _encoding(encode_spans))
    cache = AttributeCache()
    _report(
        "export encoding per span, the runtime's bytes",
        _encoding(lambda spans: export_request(cache, spans)),
    )
    # The log lines go to descriptor 1, now /dev/null; the report to a copy of the old one.
    report = os.dup(1)
    os.dup2(os.open(os.devnull, os.O_WRONLY), 1)
    log_line = _log_line()
    sys.stdout = open(report, "w", buffering=1)  # noqa: SIM115 (the process's own stdout)
    _report("log line (MethodLog.log, JSON, traceparent)", log_line)


if __name__ == "__main__":
    main()
