"""Trace headers as Cloud Run's front end and OpenTelemetry clients send them."""

from absl.testing import absltest

from python.runtime.trace_context import TraceContext, from_metadata

TRACE = "105445aa7843bc8bf206b12000100000"


class TraceContextTest(absltest.TestCase):
    def test_cloud_trace_header_with_decimal_span(self) -> None:
        context = from_metadata((("x-cloud-trace-context", f"{TRACE}/1;o=1"),))
        self.assertEqual(context, TraceContext(TRACE, "0000000000000001", True))

    def test_cloud_trace_header_without_span_or_options(self) -> None:
        self.assertEqual(
            from_metadata((("x-cloud-trace-context", TRACE.upper()),)),
            TraceContext(TRACE, None, False),
        )

    def test_traceparent_wins_over_cloud_header(self) -> None:
        metadata = (
            ("x-cloud-trace-context", f"{'a' * 32}/5;o=1"),
            ("traceparent", f"00-{TRACE}-b7ad6b7169203331-01"),
        )
        self.assertEqual(from_metadata(metadata), TraceContext(TRACE, "b7ad6b7169203331", True))

    def test_tracestate_and_the_random_flag_go_with_traceparent(self) -> None:
        metadata = (
            ("tracestate", "congo=t61rcWkgMzE"),
            ("traceparent", f"00-{TRACE}-b7ad6b7169203331-03"),
            ("tracestate", "rojo=00f067aa0ba902b7"),
        )
        self.assertEqual(
            from_metadata(metadata),
            TraceContext(
                TRACE, "b7ad6b7169203331", True, True, "congo=t61rcWkgMzE,rojo=00f067aa0ba902b7"
            ),
        )
        # Without traceparent there is no W3C context for it to go with.
        cloud = (("x-cloud-trace-context", f"{TRACE}/1;o=1"), ("tracestate", "congo=1"))
        self.assertEqual(from_metadata(cloud).state, "")

    def test_invalid_headers_are_ignored(self) -> None:
        for metadata in (
            (("traceparent", f"00-{'0' * 32}-b7ad6b7169203331-01"),),  # all-zero trace id
            (("traceparent", "garbage"),),
            (("x-cloud-trace-context", "not-hex/1"),),
            (("x-cloud-trace-context-bin", b"\x00"),),
            (),
            None,
        ):
            with self.subTest(metadata=metadata):
                self.assertIsNone(from_metadata(metadata))

    def test_log_fields(self) -> None:
        fields = TraceContext(TRACE, "0000000000000001", True).log_fields("proj")
        self.assertEqual(fields["logging.googleapis.com/trace"], f"projects/proj/traces/{TRACE}")
        self.assertEqual(fields["logging.googleapis.com/spanId"], "0000000000000001")


if __name__ == "__main__":
    absltest.main()
