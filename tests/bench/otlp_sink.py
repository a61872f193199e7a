"""An OTLP/gRPC endpoint that accepts every export and keeps only its size: the collector of
the benchmark's traced servers. It decodes nothing, so the benchmark process spends next to
no CPU on what the servers send (tests/e2e/otlp_receiver.py keeps and parses it, for tests)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent import futures

import grpc

# The collector's services (opentelemetry-proto); an empty response message is zero bytes.
_SERVICES = {
    "opentelemetry.proto.collector.trace.v1.TraceService": "spans_bytes",
    "opentelemetry.proto.collector.metrics.v1.MetricsService": "metrics_bytes",
}


class OtlpSink:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.spans_bytes = 0
        self.metrics_bytes = 0
        self._server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
        for service, counter in _SERVICES.items():
            self._server.add_generic_rpc_handlers(
                (
                    grpc.method_handlers_generic_handler(
                        service,
                        {"Export": grpc.unary_unary_rpc_method_handler(self._counting(counter))},
                    ),
                )
            )
        self.port = self._server.add_insecure_port("127.0.0.1:0")
        self.endpoint = f"http://127.0.0.1:{self.port}"

    def _counting(self, counter: str) -> Callable[[bytes, grpc.ServicerContext], bytes]:
        def export(request: bytes, context: grpc.ServicerContext) -> bytes:
            with self._lock:
                setattr(self, counter, getattr(self, counter) + len(request))
            return b""

        return export

    def __enter__(self) -> OtlpSink:
        self._server.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._server.stop(None)
