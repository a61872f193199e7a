"""The server's stdout as Cloud Logging reads it: JSON lines, traces, labels, and no secrets."""

from __future__ import annotations

import grpc
from absl.testing import absltest
from ping.v1 import ping_pb2, ping_pb2_grpc

from tests.e2e.processes import Server

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
SECRET = "eyJhbGciOiJSUzI1NiJ9.secret-token-value"
CLOUD_RUN_ENV = {"GOOGLE_CLOUD_PROJECT": "kit-test", "K_SERVICE": "ping", "K_REVISION": "ping-7"}


def is_send(entry: dict) -> bool:
    return entry.get("method") == "/ping.v1.PingService/Send"


class LogsTest(absltest.TestCase):
    def test_rpc_log_line_with_cloud_trace_header(self) -> None:
        with Server(env=CLOUD_RUN_ENV) as server, grpc.insecure_channel(server.address) as ch:
            metadata = [
                ("x-cloud-trace-context", f"{TRACE_ID}/1234567890;o=1"),
                ("authorization", f"Bearer {SECRET}"),
            ]
            ping_pb2_grpc.PingServiceStub(ch).Send(
                ping_pb2.Request(message="traced"), metadata=metadata, timeout=10
            )
            entry = server.wait_for_log(is_send)
            everything = "".join(server.lines)
        self.assertEqual(entry["severity"], "INFO")
        self.assertEqual(entry["code"], "OK")
        self.assertRegex(entry["latency"], r"^\d+\.\d{6}s$")
        self.assertRegex(entry["peer"], r"^ipv[46]:")
        self.assertTrue(entry["time"].startswith("20"))
        self.assertEqual(
            entry["logging.googleapis.com/trace"], f"projects/kit-test/traces/{TRACE_ID}"
        )
        self.assertEqual(entry["logging.googleapis.com/spanId"], f"{1234567890:016x}")
        self.assertIs(entry["logging.googleapis.com/trace_sampled"], True)
        self.assertEqual(
            entry["logging.googleapis.com/labels"], {"service": "ping", "revision": "ping-7"}
        )
        self.assertNotIn("secret-token-value", everything)

    def test_w3c_traceparent_and_error_codes(self) -> None:
        with Server(env=CLOUD_RUN_ENV) as server, grpc.insecure_channel(server.address) as ch:
            stub = ping_pb2_grpc.PingServiceStub(ch)
            traceparent = f"00-{TRACE_ID}-00f067aa0ba902b7-00"
            stub.Send(ping_pb2.Request(), metadata=[("traceparent", traceparent)], timeout=10)
            with self.assertRaises(grpc.RpcError):
                stub.SendUpstream(ping_pb2.Request(), timeout=10)  # no upstream configured
            sent = server.wait_for_log(is_send)
            failed = server.wait_for_log(lambda e: e.get("code") == "FAILED_PRECONDITION")
        self.assertEqual(sent["logging.googleapis.com/spanId"], "00f067aa0ba902b7")
        self.assertIs(sent["logging.googleapis.com/trace_sampled"], False)
        self.assertEqual(failed["method"], "/ping.v1.PingService/SendUpstream")
        self.assertNotIn("logging.googleapis.com/trace", failed)

    def test_every_stdout_line_is_json(self) -> None:
        with Server(env=CLOUD_RUN_ENV) as server, grpc.insecure_channel(server.address) as ch:
            ping_pb2_grpc.PingServiceStub(ch).Send(ping_pb2.Request(), timeout=10)
            server.wait_for_log(is_send)
            self.assertEqual(server.stop(), 0)
        entries = server.logs()
        self.assertLen(entries, len(server.lines))
        self.assertEqual(entries[-1]["message"], "stopped")

    def test_text_format_for_people(self) -> None:
        with Server("--log_format=text") as server:
            self.assertFalse(server.lines[0].startswith("{"))
            self.assertIn("INFO", server.lines[0])


if __name__ == "__main__":
    absltest.main()
