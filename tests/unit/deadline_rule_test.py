"""The rule that tells a client's deadline from its cancel, which arrive as the same frame
(python/runtime/call_boundary.py, docs/deadlines-and-flakes.md): its boundaries exactly, without
a clock. The proof on real sockets under load is //tests/adversarial:deadlines_test."""

from __future__ import annotations

from absl.testing import absltest

from python.runtime.call_boundary import cancelled_by_deadline


def deadline(cancel_at: float, server_copy: float) -> bool:
    """Whether a cancel `cancel_at` seconds into a call whose deadline the server counted as
    `server_copy` seconds is logged as the deadline."""
    return cancelled_by_deadline(elapsed=cancel_at, remaining=server_copy - cancel_at)


class DeadlineRuleTest(absltest.TestCase):
    def test_second_half_of_a_short_call_is_its_deadline(self) -> None:
        # A busy Java client (measured): its 1 s watch reached the handler with 0.166 s left,
        # and its deadline's cancel came 0.098 s later.
        self.assertTrue(deadline(cancel_at=0.098, server_copy=0.166))
        self.assertTrue(deadline(cancel_at=0.5, server_copy=1.0))

    def test_first_half_of_a_short_call_is_a_cancel(self) -> None:
        self.assertFalse(deadline(cancel_at=0.49, server_copy=1.0))
        self.assertFalse(deadline(cancel_at=0.0, server_copy=0.001))

    def test_within_a_second_and_a_percent_of_its_end_is_its_deadline(self) -> None:
        self.assertTrue(deadline(cancel_at=9.6, server_copy=10.0))
        self.assertTrue(deadline(cancel_at=28.71, server_copy=30.0))  # 1 s + 0.3 s
        self.assertFalse(deadline(cancel_at=28.69, server_copy=30.0))
        self.assertFalse(deadline(cancel_at=2.5, server_copy=4.0))  # past half, 1.5 s left

    def test_grpc_core_rounding_of_long_timeouts_is_its_deadline(self) -> None:
        # grpc-core sends a 150.3 s timeout as 151S and 1234 s as 1240S (measured); here the
        # requests also arrived 0.1 s late.
        self.assertTrue(deadline(cancel_at=150.2, server_copy=151.0))
        self.assertTrue(deadline(cancel_at=1233.9, server_copy=1240.0))
        self.assertFalse(deadline(cancel_at=1200.0, server_copy=1240.0))


if __name__ == "__main__":
    absltest.main()
