"""`rpc.server.duration`, aggregated by the runtime and exported with the SDK's other metrics.

Why not the SDK's `Histogram.record`: for every call it validates, copies, sorts and hashes the
point's attributes and offers the point to an exemplar reservoir, 24 us per call in the serving
process (py-spy, docs/observability-cost.md): more than all of the 2 points of CPU that metrics
may cost. The runtime knows its attribute sets in advance (one per method and code), so here a
call costs a dict lookup, a bisect and a few additions under a lock, and at each export the
points the SDK would have made are built from its own data model and handed to the same OTLP
exporter, beside the SDK's metrics (`WithCallDurations`):

- explicit buckets at the semantic conventions' boundaries for RPC durations, which are also
  the SDK's default; count, sum, min and max;
- the temporality the exporter prefers (cumulative, unless
  OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE asks for delta);
- exemplars as the SDK's default reservoir for explicit buckets keeps them, the last
  measurement in each bucket since the previous export, admitted by
  OTEL_METRICS_EXEMPLAR_FILTER (`trace_based`, the default: calls whose span is sampled;
  `always_on`; `always_off`).

Not honoured for this one metric: views, and an exponential histogram asked for by
OTEL_EXPORTER_OTLP_METRICS_DEFAULT_HISTOGRAM_AGGREGATION.
"""

from __future__ import annotations

import bisect
import os
import threading
import time
from collections.abc import Callable

from opentelemetry.sdk.metrics import Exemplar as SdkExemplar
from opentelemetry.sdk.metrics import Histogram as HistogramInstrument
from opentelemetry.sdk.metrics.export import (
    AggregationTemporality,
    Histogram,
    HistogramDataPoint,
    Metric,
    MetricExporter,
    MetricExportResult,
    MetricsData,
    ResourceMetrics,
    ScopeMetrics,
)
from opentelemetry.sdk.metrics.view import Aggregation
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import SpanContext

NAME = "rpc.server.duration"
UNIT = "ms"
DESCRIPTION = "Duration of gRPC calls served."
# The semantic conventions' advice for rpc.server.duration (ms), the SDK's default buckets too.
BOUNDARIES_MS = (0, 5, 10, 25, 50, 75, 100, 250, 500, 750, 1000, 2500, 5000, 7500, 10000)
EXEMPLAR_FILTERS = ("trace_based", "always_on", "always_off")

# A point's attributes from its method and code (otel_export's, cached there).
Attributes = Callable[[str, int], dict[str, str | int]]
# (value in ms, time in ns, span id, trace id); ids 0 when the call had no span context.
Exemplar = tuple[float, int, int, int]


def exemplar_filter() -> str:
    """OTEL_METRICS_EXEMPLAR_FILTER, read as the SDK reads it (an unknown value: its default)."""
    setting = os.environ.get("OTEL_METRICS_EXEMPLAR_FILTER", "").strip().lower()
    return setting if setting in EXEMPLAR_FILTERS else "trace_based"


class _Series:
    """One method's and code's calls since the series started."""

    __slots__ = ("buckets", "count", "exemplars", "max", "min", "start", "sum")

    def __init__(self, start: int) -> None:
        self.start = start
        self.count = 0
        self.sum = 0.0
        self.min = float("inf")
        self.max = float("-inf")
        self.buckets = [0] * (len(BOUNDARIES_MS) + 1)
        self.exemplars: list[Exemplar | None] = [None] * (len(BOUNDARIES_MS) + 1)


class CallDurations:
    """The histogram of every call's duration by method and code; `record` on any thread."""

    def __init__(self, attributes: Attributes, exemplars: str, delta: bool) -> None:
        self._attributes = attributes
        self._exemplars = exemplars
        self._delta = delta
        self._lock = threading.Lock()
        self._series: dict[tuple[str, int], _Series] = {}
        # The latest export's time: the SDK starts a series there (at its first call before any).
        self._collected_ns: int | None = None

    def record(self, method: str, code: int, ms: float, span: SpanContext | None) -> None:
        index = bisect.bisect_left(BOUNDARIES_MS, ms)  # value <= bound: the bound's bucket
        exemplar = None
        if self._exemplars == "always_on" or (
            self._exemplars == "trace_based" and span is not None and span.trace_flags.sampled
        ):
            ids = (span.span_id, span.trace_id) if span is not None else (0, 0)
            exemplar = (ms, time.time_ns(), *ids)
        with self._lock:
            series = self._series.get((method, code))
            if series is None:
                start = self._collected_ns or time.time_ns()
                series = self._series[method, code] = _Series(start)
            series.count += 1
            series.sum += ms
            series.min = min(series.min, ms)
            series.max = max(series.max, ms)
            series.buckets[index] += 1
            if exemplar is not None:
                series.exemplars[index] = exemplar

    def metric(self) -> Metric | None:
        """The histogram as the SDK's data model, None before the first call. With delta
        temporality, each call is in the one export after it."""
        now = time.time_ns()
        with self._lock:
            series, self._collected_ns = self._series, now
            if self._delta:
                self._series = {}
            else:
                series = {key: _copy(one) for key, one in series.items()}
        if not series:
            return None
        temporality = (
            AggregationTemporality.DELTA if self._delta else AggregationTemporality.CUMULATIVE
        )
        points = [
            HistogramDataPoint(
                attributes=self._attributes(method, code),
                start_time_unix_nano=one.start,
                time_unix_nano=now,
                count=one.count,
                sum=one.sum,
                bucket_counts=one.buckets,
                explicit_bounds=BOUNDARIES_MS,
                min=one.min,
                max=one.max,
                exemplars=[_exemplar(e) for e in one.exemplars if e is not None],
            )
            for (method, code), one in series.items()
        ]
        return Metric(NAME, DESCRIPTION, UNIT, Histogram(points, temporality))


def _copy(series: _Series) -> _Series:
    """The series so far, taking its exemplars: the SDK's reservoir is emptied at each
    collection, cumulative too, so an exemplar goes out in one export only."""
    copy = _Series(series.start)
    copy.count, copy.sum, copy.min, copy.max = series.count, series.sum, series.min, series.max
    copy.buckets, copy.exemplars = list(series.buckets), series.exemplars
    series.exemplars = [None] * len(copy.exemplars)
    return copy


def _exemplar(exemplar: Exemplar) -> SdkExemplar:
    value, time_unix_nano, span_id, trace_id = exemplar
    return SdkExemplar(None, value, time_unix_nano, span_id or None, trace_id or None)


class WithCallDurations(MetricExporter):
    """An exporter that adds `durations` to what the SDK collected, in the runtime's scope."""

    def __init__(self, inner: MetricExporter, scope: InstrumentationScope) -> None:
        # The reader asks its exporter for these (PeriodicExportingMetricReader).
        temporality = inner._preferred_temporality
        aggregation: dict[type, Aggregation] = inner._preferred_aggregation
        super().__init__(preferred_temporality=temporality, preferred_aggregation=aggregation)
        self._inner = inner
        self._scope = scope
        self.durations: CallDurations | None = None
        self.delta = (temporality or {}).get(HistogramInstrument) == AggregationTemporality.DELTA

    def export(
        self, metrics_data: MetricsData, timeout_millis: float = 10_000, **kwargs
    ) -> MetricExportResult:
        metric = self.durations.metric() if self.durations is not None else None
        if metric is not None:
            metrics_data = MetricsData(
                [_with(r, metric, self._scope) for r in metrics_data.resource_metrics]
            )
        return self._inner.export(metrics_data, timeout_millis=timeout_millis, **kwargs)

    def force_flush(self, timeout_millis: float = 10_000) -> bool:
        return self._inner.force_flush(timeout_millis)

    def shutdown(self, timeout_millis: float = 30_000, **kwargs) -> None:
        self._inner.shutdown(timeout_millis=timeout_millis, **kwargs)


def _with(
    resource: ResourceMetrics, metric: Metric, scope: InstrumentationScope
) -> ResourceMetrics:
    scopes = list(resource.scope_metrics)
    for index, one in enumerate(scopes):
        if one.scope.name == scope.name:
            scopes[index] = ScopeMetrics(one.scope, [*one.metrics, metric], one.schema_url)
            break
    else:
        scopes.append(ScopeMetrics(scope, [metric], ""))
    return ResourceMetrics(resource.resource, scopes, resource.schema_url)
