"""Traces and metrics of real server processes, as an OTLP receiver on loopback gets them.

A relayed call (client -> relay's Relay -> upstream's Unary) must arrive as one trace:
the relay's SERVER span, child of the caller's `traceparent`; the relay's CLIENT span under
it; the upstream's SERVER span under that. Each call's log line names its own span. A
collector that hangs or refuses changes no call's result, and every span it did not take is
counted in the drop warnings by the time the server exits.
"""

from __future__ import annotations

import contextlib
import socket
import sys
import threading
from collections.abc import Iterator
from concurrent import futures

import grpc
from absl.testing import absltest
from grpc import StatusCode
from kittest.v1 import test_service_pb2 as pb
from kittest.v1 import test_service_pb2_grpc

from tests.e2e.otlp_receiver import OtlpReceiver, Received, attributes
from tests.e2e.processes import KITTEST_SERVER, Server

PROJECT = "telemetry-test"
TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
CALLER_SPAN_ID = "00f067aa0ba902b7"
TRACEPARENT = f"00-{TRACE_ID}-{CALLER_SPAN_ID}-01"
SERVER, CLIENT = 2, 3  # OTLP's SPAN_KIND_SERVER, SPAN_KIND_CLIENT
STATUS_ERROR = 2  # OTLP's STATUS_CODE_ERROR


def telemetry_env(endpoint: str, service: str) -> dict[str, str]:
    """The settings a Cloud Run service with a collector sidecar would have, exporting soon."""
    return {
        "OTEL_EXPORTER_OTLP_ENDPOINT": endpoint,
        "K_SERVICE": service,
        "OTEL_BSP_SCHEDULE_DELAY": "50",
        "OTEL_METRIC_EXPORT_INTERVAL": "200",
        "OTEL_EXPORTER_OTLP_TIMEOUT": "1",
    }


def call(
    address: str,
    method: str,
    metadata: tuple[tuple[str, str], ...] = (),
    timeout: float = 10,
) -> pb.UnaryResponse:
    """`method` ("Unary" or "Relay") with the message "hi"; the answer of the server that
    answered it (the upstream's, for Relay)."""
    request = pb.UnaryRequest(message="hi")
    with grpc.insecure_channel(address) as channel:
        stub = test_service_pb2_grpc.TestServiceStub(channel)
        if method == "Relay":
            relayed = pb.RelayRequest(request=request)
            return stub.Relay(relayed, metadata=metadata, timeout=timeout).response
        return getattr(stub, method)(request, metadata=metadata, timeout=timeout)


class HangingUpstream(test_service_pb2_grpc.TestServiceServicer):
    """Answers Unary once released: an upstream slower than any caller's deadline."""

    def __init__(self) -> None:
        self.released = threading.Event()
        self.arrivals = threading.Semaphore(0)

    def Unary(self, request: pb.UnaryRequest, context: grpc.ServicerContext) -> pb.UnaryResponse:
        self.arrivals.release()
        self.released.wait()
        return pb.UnaryResponse()


@contextlib.contextmanager
def hanging_upstream() -> Iterator[tuple[str, HangingUpstream]]:
    servicer = HangingUpstream()
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    test_service_pb2_grpc.add_TestServiceServicer_to_server(servicer, server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        yield f"127.0.0.1:{port}", servicer
    finally:
        servicer.released.set()
        server.stop(None)


def span_tree(spans: list[Received]) -> str:
    """The spans as an indented tree, for the test's output and failure messages."""
    children: dict[str, list[Received]] = {}
    for span in spans:
        children.setdefault(span.parent_id, []).append(span)
    ids = {span.span_id for span in spans}
    lines: list[str] = []

    def add(span: Received, depth: int) -> None:
        kind = {SERVER: "SERVER", CLIENT: "CLIENT"}.get(span.span.kind, str(span.span.kind))
        lines.append(
            f"{'  ' * depth}{span.service}: {span.span.name} {kind} span={span.span_id} "
            f"parent={span.parent_id or '-'} code={span.attributes.get('rpc.grpc.status_code')}"
        )
        for child in children.get(span.span_id, []):
            add(child, depth + 1)

    for root in [s for s in spans if s.parent_id not in ids]:
        add(root, 0)
    return f"trace {spans[0].trace_id}\n" + "\n".join(lines)


class TelemetryEndToEndTest(absltest.TestCase):
    def setUp(self) -> None:
        super().setUp()
        self.receiver = self.enterContext(OtlpReceiver())

    def server(self, *args: str, service: str = "kittest") -> Server:
        env = telemetry_env(self.receiver.endpoint, service)
        return self.enterContext(
            Server(f"--project={PROJECT}", *args, env=env, binary_var=KITTEST_SERVER)
        )

    def span_of_log(self, server: Server, method: str) -> str:
        line = server.wait_for_log(lambda e: e.get("method") == method)
        self.assertEqual(
            line["logging.googleapis.com/trace"], f"projects/{PROJECT}/traces/{TRACE_ID}"
        )
        return line["logging.googleapis.com/spanId"]

    def test_relayed_call_is_one_trace_across_both_servers(self) -> None:
        upstream = self.server(service="kittest-upstream")
        relay = self.server(f"--upstream={upstream.address}", "--upstream_insecure")

        response = call(relay.address, "Relay", (("traceparent", TRACEPARENT),))

        self.assertEqual(response.message, "hi")
        spans = self.receiver.wait_for_spans(lambda s: s.trace_id == TRACE_ID, count=3)
        print(span_tree(spans), file=sys.stderr)
        by_name = {(s.service, s.span.kind): s for s in spans}
        relay_server = by_name["kittest", SERVER]
        relay_client = by_name["kittest", CLIENT]
        upstream_server = by_name["kittest-upstream", SERVER]
        self.assertEqual(relay_server.span.name, "kittest.v1.TestService/Relay")
        self.assertEqual(relay_server.parent_id, CALLER_SPAN_ID)
        self.assertEqual(relay_client.span.name, "kittest.v1.TestService/Unary")
        self.assertEqual(relay_client.parent_id, relay_server.span_id)
        self.assertEqual(upstream_server.span.name, "kittest.v1.TestService/Unary")
        self.assertEqual(upstream_server.parent_id, relay_client.span_id)
        self.assertEqual(
            {k: relay_server.attributes[k] for k in ("rpc.system", "rpc.service", "rpc.method")},
            {
                "rpc.system": "grpc",
                "rpc.service": "kittest.v1.TestService",
                "rpc.method": "Relay",
            },
        )
        for span in spans:
            self.assertEqual(span.attributes["rpc.grpc.status_code"], 0, span.span.name)
        self.assertIn(relay_server.attributes["network.peer.address"], ("127.0.0.1", "::1"))
        self.assertIsInstance(relay_server.attributes["network.peer.port"], int)
        # Each log line names its own server's span: Cloud Logging joins it to Cloud Trace.
        self.assertEqual(
            self.span_of_log(relay, "/kittest.v1.TestService/Relay"), relay_server.span_id
        )
        self.assertEqual(
            self.span_of_log(upstream, "/kittest.v1.TestService/Unary"), upstream_server.span_id
        )

    def test_tracestate_goes_on_with_the_trace(self) -> None:
        upstream = self.server(service="kittest-upstream")
        relay = self.server(f"--upstream={upstream.address}", "--upstream_insecure")
        state = "congo=t61rcWkgMzE,rojo=00f067aa0ba902b7"
        metadata = (("traceparent", TRACEPARENT), ("tracestate", state))

        self.assertEqual(call(relay.address, "Relay", metadata).message, "hi")
        spans = self.receiver.wait_for_spans(lambda s: s.trace_id == TRACE_ID, count=3)
        # The relay's server and client spans carry it, and its call upstream sends it on.
        self.assertEqual({s.span.trace_state for s in spans}, {state}, span_tree(spans))

        # A tracestate that is not W3C is dropped whole, its value in no log; the parent stays.
        secret = "Token=hunter2"  # keys are lowercase
        bad = (("traceparent", TRACEPARENT), ("tracestate", secret))
        self.assertEqual(call(upstream.address, "Unary", bad).message, "hi")
        (span,) = self.receiver.wait_for_spans(
            lambda s: s.parent_id == CALLER_SPAN_ID and s.service == "kittest-upstream"
        )
        self.assertEqual(span.span.trace_state, "")
        upstream.wait_for_logs(lambda e: e.get("method") == "/kittest.v1.TestService/Unary", 2)
        self.assertNotIn("hunter2", upstream.output())

    def test_parent_from_each_header(self) -> None:
        server = self.server()
        cloud_span = 12345  # X-Cloud-Trace-Context names its span in decimal
        headers = {
            "traceparent": (("traceparent", TRACEPARENT),),
            "x-cloud-trace-context": (
                ("x-cloud-trace-context", f"{TRACE_ID.upper()}/{cloud_span};o=1"),
            ),
        }
        expected_parent = {
            "traceparent": CALLER_SPAN_ID,
            "x-cloud-trace-context": f"{cloud_span:016x}",
        }
        for header, metadata in headers.items():
            with self.subTest(header):
                call(server.address, "Unary", metadata)
                (span,) = self.receiver.wait_for_spans(
                    lambda s, parent=expected_parent[header]: s.parent_id == parent
                )
                self.assertEqual(span.trace_id, TRACE_ID)
                self.assertEqual(span.span.kind, SERVER)
        # No header: a trace of its own, rooted at this server.
        call(server.address, "Unary")
        (root,) = self.receiver.wait_for_spans(lambda s: not s.parent_id)
        self.assertNotEqual(root.trace_id, TRACE_ID)

    def test_codes_of_failed_cancelled_and_deadline_exceeded_calls(self) -> None:
        upstream, hanging = self.enterContext(hanging_upstream())
        relay = self.server(f"--upstream={upstream}", "--upstream_insecure")
        unconfigured = self.server()

        with self.assertRaises(grpc.RpcError) as failed:
            call(unconfigured.address, "Relay", (("traceparent", TRACEPARENT),))
        self.assertEqual(failed.exception.code(), StatusCode.FAILED_PRECONDITION)
        with grpc.insecure_channel(relay.address) as channel:
            stub = test_service_pb2_grpc.TestServiceStub(channel)
            future = stub.Relay.future(
                pb.RelayRequest(request=pb.UnaryRequest(message="x")),
                metadata=(("traceparent", TRACEPARENT),),
                timeout=30,
            )
            # Cancel once the relay waits on its upstream.
            self.assertTrue(hanging.arrivals.acquire(timeout=10), "the relay never called")
            future.cancel()
        with self.assertRaises(grpc.RpcError) as late:
            call(relay.address, "Relay", (("traceparent", TRACEPARENT),), timeout=0.5)
        self.assertEqual(late.exception.code(), StatusCode.DEADLINE_EXCEEDED)

        codes = {"FAILED_PRECONDITION": 9, "DEADLINE_EXCEEDED": 4, "CANCELLED": 1}
        for name, number in codes.items():
            with self.subTest(name):
                (span,) = self.receiver.wait_for_spans(
                    lambda s, n=number: (
                        s.span.kind == SERVER and s.attributes["rpc.grpc.status_code"] == n
                    )
                )
                self.assertEqual(span.span.name, "kittest.v1.TestService/Relay")
                # The span's code is the log line's: both come from one decision.
                server = unconfigured if name == "FAILED_PRECONDITION" else relay
                line = server.wait_for_log(lambda e, n=name: e.get("code") == n)
                self.assertEqual(line["logging.googleapis.com/spanId"], span.span_id)
        (deadline,) = self.receiver.wait_for_spans(
            lambda s: s.span.kind == SERVER and s.attributes["rpc.grpc.status_code"] == 4
        )
        self.assertEqual(deadline.span.status.code, STATUS_ERROR)
        # Both servers still answer.
        self.assertEqual(call(relay.address, "Unary").message, "hi")
        self.assertEqual(call(unconfigured.address, "Unary").message, "hi")

    def test_metrics_duration_by_method_and_code(self) -> None:
        server = self.server()
        for _ in range(3):
            call(server.address, "Unary")
        with self.assertRaises(grpc.RpcError):
            call(server.address, "Relay")

        def duration_points(code: int) -> list:
            metric = self.receiver.wait_for_metric(
                lambda service, m: (
                    m.name == "rpc.server.duration"
                    and any(
                        attributes(list(p.attributes)).get("rpc.grpc.status_code") == code
                        for p in m.histogram.data_points
                    )
                )
            )
            return [
                p
                for p in metric.histogram.data_points
                if attributes(list(p.attributes)).get("rpc.grpc.status_code") == code
            ]

        (ok,) = duration_points(0)
        self.assertEqual(
            attributes(list(ok.attributes)),
            {
                "rpc.system": "grpc",
                "rpc.service": "kittest.v1.TestService",
                "rpc.method": "Unary",
                "rpc.grpc.status_code": 0,
            },
        )
        self.assertEqual(ok.count, 3)
        self.assertEqual(sum(ok.bucket_counts), 3)
        self.assertEqual(len(ok.bucket_counts), len(ok.explicit_bounds) + 1)
        self.assertLessEqual(ok.min, ok.max)
        # Each kept exemplar names the span of a call it counts (every call here is sampled).
        # An exemplar goes out in the one export after its call, as the SDK's reservoir is
        # emptied at each: those of every export so far.
        exemplars = [
            e
            for _, m in list(self.receiver.metrics)
            if m.name == "rpc.server.duration"
            for p in m.histogram.data_points
            if attributes(list(p.attributes)) == attributes(list(ok.attributes))
            for e in p.exemplars
        ]
        self.assertTrue(exemplars)
        unary = self.receiver.wait_for_spans(
            lambda s: s.span.kind == SERVER and s.span.name.endswith("/Unary"), count=3
        )
        for exemplar in exemplars:
            self.assertIn(exemplar.span_id.hex(), {s.span_id for s in unary})
        (failed,) = duration_points(9)
        self.assertEqual(attributes(list(failed.attributes))["rpc.method"], "Relay")
        self.assertEqual(failed.count, 1)

    def test_metrics_calls_in_flight(self) -> None:
        upstream, hanging = self.enterContext(hanging_upstream())
        relay = self.server(f"--upstream={upstream}", "--upstream_insecure")

        def in_flight(count: int, since: int = 0) -> None:
            self.receiver.wait_for_metric(
                lambda service, m: (
                    m.name == "rpc.server.active_calls"
                    and [p.as_int for p in m.sum.data_points] == [count]
                ),
                since,
            )

        with grpc.insecure_channel(relay.address) as channel:
            stub = test_service_pb2_grpc.TestServiceStub(channel)
            future = stub.Relay.future(pb.RelayRequest(), timeout=30)
            self.assertTrue(hanging.arrivals.acquire(timeout=10), "the relay never called")
            in_flight(1)
            future.cancel()
            cancelled = len(self.receiver.metrics)
        in_flight(0, since=cancelled)
        self.assertEqual(call(relay.address, "Unary").message, "hi")


class DownCollectorTest(absltest.TestCase):
    def calls_unaffected(self, env: dict[str, str]) -> tuple[dict, dict]:
        """Calls answered as without telemetry, the drop warning, the server still answering
        and its clean exit, whose last warning counts every span not reported before; returns
        the minute's drop warning and the last one."""
        with Server(f"--project={PROJECT}", env=env, binary_var=KITTEST_SERVER) as server:
            for index in range(1, 21):
                response = call(server.address, "Unary", (("traceparent", TRACEPARENT),))
                self.assertEqual(response.index, index)
            with self.assertRaises(grpc.RpcError) as failed:
                call(server.address, "Relay")
            self.assertEqual(failed.exception.code(), StatusCode.FAILED_PRECONDITION)
            warning = server.wait_for_log(lambda e: "spans dropped" in e.get("message", ""))
            self.assertEqual(warning["severity"], "WARNING")
            self.assertGreater(warning["dropped_spans"], 0)
            self.assertEqual(call(server.address, "Unary").index, 21)
            server.stop()  # SIGTERM; fails unless the exit status is 0
        self.assertEqual(server.non_json_lines(), [])
        *in_the_minute, last = [e for e in server.logs() if "spans dropped" in e.get("message", "")]
        self.assertIn("at shutdown", last["message"])
        self.assertLen(in_the_minute, 1, "more than one drop warning within a minute")
        # Each of the 22 calls made one sampled span, and the collector acknowledged none (the
        # hanging receiver keeps a batch it never answers): every one is counted, once.
        self.assertEqual(last["dropped_spans_total"], 22, last)
        self.assertEqual(in_the_minute[0]["dropped_spans"] + last["dropped_spans"], 22)
        return in_the_minute[0], last

    def test_collector_that_hangs_changes_no_result_and_the_full_queue_drops(self) -> None:
        receiver = self.enterContext(OtlpReceiver(hang=True))
        env = telemetry_env(receiver.endpoint, "kittest") | {
            # The first batch waits on the receiver for good; the next spans fill the queue.
            "OTEL_EXPORTER_OTLP_TIMEOUT": "60",
            "OTEL_BSP_MAX_QUEUE_SIZE": "8",
            "OTEL_BSP_MAX_EXPORT_BATCH_SIZE": "4",
        }
        warning, last = self.calls_unaffected(env)
        receiver.wait_for_exports(1)  # it was reached, and held the export
        self.assertIn("queue full", warning["message"])
        # The queue's 8 spans, and those of the export still held, were never sent.
        self.assertGreater(last["unsent_spans"], 8)

    def test_collector_that_refuses_changes_no_result(self) -> None:
        # A port bound and never listened on refuses every connection, and stays this test's: a
        # receiver's port freed by stopping it was taken by another test's server, whose
        # GOAWAY made grpc-core print a line of its own.
        refusing = self.enterContext(socket.socket())
        refusing.bind(("127.0.0.1", 0))
        endpoint = f"http://127.0.0.1:{refusing.getsockname()[1]}"
        # The exporter retries UNAVAILABLE after 1 s, then 2 s (each +-20%), while its timeout
        # allows. With 1 s, a retry after 0.8 s was cut short by the timeout and the warning
        # said DEADLINE_EXCEEDED. With 5 s the last try starts by 3.6 s, with time to be refused.
        env = telemetry_env(endpoint, "kittest") | {"OTEL_EXPORTER_OTLP_TIMEOUT": "5"}
        warning, _ = self.calls_unaffected(env)
        self.assertIn("UNAVAILABLE", warning["message"])


if __name__ == "__main__":
    absltest.main()
