"""--workers 2: two processes serve one port, and SIGTERM drains both."""

from __future__ import annotations

import grpc
from absl.testing import absltest
from ping.v1 import ping_pb2, ping_pb2_grpc

from tests.e2e.processes import Server

CONNECTIONS = 40


class WorkersTest(absltest.TestCase):
    def test_both_workers_answer_and_drain(self) -> None:
        with Server("--workers=2", listeners=2) as server:
            # The kernel spreads connections (not calls) over the workers: many channels.
            for i in range(CONNECTIONS):
                options = [("grpc.use_local_subchannel_pool", 1)]
                with grpc.insecure_channel(f"127.0.0.1:{server.port}", options=options) as ch:
                    ping_pb2_grpc.PingServiceStub(ch).Send(
                        ping_pb2.Request(message=str(i)), timeout=10
                    )
            sends = server.wait_for_logs(
                lambda e: e.get("method") == "/ping.v1.PingService/Send", CONNECTIONS
            )
            pids = {e["pid"] for e in sends}
            self.assertLen(pids, 2, f"calls answered by {pids}")
            self.assertNotIn(server.process.pid, pids, "the parent only supervises")
            self.assertEqual(server.stop(), 0)
        stopped = server.wait_for_logs(lambda e: e["message"] == "stopped", count=2)
        self.assertEqual({e["pid"] for e in stopped}, pids)


if __name__ == "__main__":
    absltest.main()
