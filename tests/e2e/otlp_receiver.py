"""An OTLP/gRPC receiver on loopback, standing in for the OpenTelemetry collector in tests.

It implements the collector's TraceService and MetricsService from opentelemetry-proto and
keeps what servers export. `hang=True` makes every export wait until the receiver stops: a
collector that accepts connections and never answers.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent import futures

import grpc
from opentelemetry.proto.collector.metrics.v1 import (
    metrics_service_pb2,
    metrics_service_pb2_grpc,
)
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc
from opentelemetry.proto.common.v1.common_pb2 import KeyValue
from opentelemetry.proto.metrics.v1.metrics_pb2 import Metric
from opentelemetry.proto.trace.v1.trace_pb2 import Span

WAIT_SECONDS = 20.0


def attributes(values: list[KeyValue]) -> dict[str, object]:
    """OTLP attributes as a dict of their string, int, double or bool values."""
    return {kv.key: getattr(kv.value, kv.value.WhichOneof("value")) for kv in values}


class Received:
    """A span with the service.name of the process that sent it."""

    def __init__(self, service: str, span: Span) -> None:
        self.service = service
        self.span = span
        self.attributes = attributes(list(span.attributes))

    @property
    def span_id(self) -> str:
        return self.span.span_id.hex()

    @property
    def parent_id(self) -> str:
        return self.span.parent_span_id.hex()

    @property
    def trace_id(self) -> str:
        return self.span.trace_id.hex()


class OtlpReceiver:
    def __init__(self, hang: bool = False) -> None:
        self._hang = hang
        self._released = threading.Event()
        self._changed = threading.Condition()
        self.spans: list[Received] = []
        self.metrics: list[tuple[str, Metric]] = []
        self.exports = 0
        self._server = grpc.server(futures.ThreadPoolExecutor(max_workers=8))
        trace_service_pb2_grpc.add_TraceServiceServicer_to_server(_Traces(self), self._server)
        metrics_service_pb2_grpc.add_MetricsServiceServicer_to_server(_Metrics(self), self._server)
        self.port = self._server.add_insecure_port("127.0.0.1:0")
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self._server.start()

    def _arrived(self) -> None:
        with self._changed:
            self.exports += 1
            self._changed.notify_all()
        if self._hang:
            self._released.wait()

    def add_spans(self, request: trace_service_pb2.ExportTraceServiceRequest) -> None:
        received = [
            Received(str(attributes(list(rs.resource.attributes)).get("service.name")), span)
            for rs in request.resource_spans
            for ss in rs.scope_spans
            for span in ss.spans
        ]
        with self._changed:
            self.spans += received
        self._arrived()

    def add_metrics(self, request: metrics_service_pb2.ExportMetricsServiceRequest) -> None:
        received = [
            (str(attributes(list(rm.resource.attributes)).get("service.name")), metric)
            for rm in request.resource_metrics
            for sm in rm.scope_metrics
            for metric in sm.metrics
        ]
        with self._changed:
            self.metrics += received
        self._arrived()

    def wait_for_spans(
        self, predicate: Callable[[Received], bool], count: int = 1
    ) -> list[Received]:
        """The first `count` spans that match, waiting for them to arrive."""

        def matching() -> list[Received]:
            return [span for span in self.spans if predicate(span)]

        with self._changed:
            self._changed.wait_for(lambda: len(matching()) >= count, WAIT_SECONDS)
            found = matching()
        if len(found) < count:
            names = [(s.service, s.span.name) for s in self.spans]
            raise AssertionError(f"{len(found)} of {count} spans in {WAIT_SECONDS} s; got {names}")
        return found[:count]

    def wait_for_metric(self, predicate: Callable[[str, Metric], bool], since: int = 0) -> Metric:
        """The latest exported metric that matches, among those received after the first
        `since`, waiting for one to arrive."""

        def matching() -> list[Metric]:
            return [m for service, m in self.metrics[since:] if predicate(service, m)]

        with self._changed:
            self._changed.wait_for(lambda: bool(matching()), WAIT_SECONDS)
            found = matching()
        if not found:
            names = sorted({(service, m.name) for service, m in self.metrics})
            raise AssertionError(f"no such metric in {WAIT_SECONDS} s; got {names}")
        return found[-1]

    def wait_for_exports(self, count: int) -> None:
        with self._changed:
            if not self._changed.wait_for(lambda: self.exports >= count, WAIT_SECONDS):
                raise AssertionError(f"{self.exports} of {count} exports in {WAIT_SECONDS} s")

    def stop(self) -> None:
        self._released.set()
        self._server.stop(None)

    def __enter__(self) -> OtlpReceiver:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


class _Traces(trace_service_pb2_grpc.TraceServiceServicer):
    def __init__(self, receiver: OtlpReceiver) -> None:
        self._receiver = receiver

    def Export(
        self, request: trace_service_pb2.ExportTraceServiceRequest, context: grpc.ServicerContext
    ) -> trace_service_pb2.ExportTraceServiceResponse:
        self._receiver.add_spans(request)
        return trace_service_pb2.ExportTraceServiceResponse()


class _Metrics(metrics_service_pb2_grpc.MetricsServiceServicer):
    def __init__(self, receiver: OtlpReceiver) -> None:
        self._receiver = receiver

    def Export(
        self,
        request: metrics_service_pb2.ExportMetricsServiceRequest,
        context: grpc.ServicerContext,
    ) -> metrics_service_pb2.ExportMetricsServiceResponse:
        self._receiver.add_metrics(request)
        return metrics_service_pb2.ExportMetricsServiceResponse()
