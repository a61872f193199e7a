"""PingServicer alone, without a server: echo, call count, server-side timestamp."""

import asyncio
import datetime

from absl.testing import absltest
from ping.v1 import ping_pb2

from python.server.ping_servicer import PingServicer


class PingServicerTest(absltest.TestCase):
    def send(self, servicer: PingServicer, message: str) -> ping_pb2.Response:
        return asyncio.run(servicer.Send(ping_pb2.Request(message=message), None))

    def test_echoes_message(self) -> None:
        response = self.send(PingServicer(), "hello")
        self.assertEqual(response.pong.message, "hello")

    def test_index_counts_calls_per_servicer(self) -> None:
        servicer = PingServicer()
        self.assertEqual([self.send(servicer, "x").pong.index for _ in range(3)], [1, 2, 3])
        self.assertEqual(self.send(PingServicer(), "x").pong.index, 1)

    def test_received_on_is_server_time(self) -> None:
        before = datetime.datetime.now(datetime.UTC)
        received = self.send(PingServicer(), "x").pong.received_on.ToDatetime(datetime.UTC)
        after = datetime.datetime.now(datetime.UTC)
        self.assertLessEqual(before, received)
        self.assertLessEqual(received, after)

    def test_concurrent_calls_get_distinct_indexes(self) -> None:
        servicer = PingServicer()

        async def many() -> list[int]:
            calls = [servicer.Send(ping_pb2.Request(message="x"), None) for _ in range(50)]
            return [r.pong.index for r in await asyncio.gather(*calls)]

        self.assertEqual(sorted(asyncio.run(many())), list(range(1, 51)))


if __name__ == "__main__":
    absltest.main()
