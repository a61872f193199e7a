"""PingServicer alone, without the kit's server: echo, call count, server-side timestamp; and
the relay's upstream channel, built once however many first calls race for it."""

import asyncio
import datetime
import time
from unittest import mock

import grpc
from absl.testing import absltest
from ping.v1 import ping_pb2, ping_pb2_grpc

from python.channels import channels
from python.services.ping.ping_servicer import PingServicer, Upstream


class _Context:
    """The little of grpc.aio.ServicerContext that SendUpstream reads when all goes well."""

    def invocation_metadata(self) -> tuple:
        return ()

    def time_remaining(self) -> float:
        return 10.0


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

    def test_concurrent_first_relays_build_one_channel(self) -> None:
        make_credentials = channels.channel_credentials

        def slow_credentials(connection: channels.Connection) -> grpc.ChannelCredentials | None:
            time.sleep(0.1)  # as minting an ID token does: the first calls overlap
            return make_credentials(connection)

        async def relay_concurrently() -> tuple[int, list[str]]:
            upstream = grpc.aio.server()
            ping_pb2_grpc.add_PingServiceServicer_to_server(PingServicer(), upstream)
            port = upstream.add_insecure_port("127.0.0.1:0")
            await upstream.start()
            relay = PingServicer(Upstream(target=f"127.0.0.1:{port}", insecure=True))
            try:
                with (
                    mock.patch.object(channels, "channel_credentials", slow_credentials),
                    mock.patch.object(
                        channels, "open_aio_channel", wraps=channels.open_aio_channel
                    ) as opened,
                ):
                    calls = [
                        relay.SendUpstream(ping_pb2.Request(message=str(i)), _Context())
                        for i in range(20)
                    ]
                    responses = await asyncio.gather(*calls)
                return opened.call_count, [r.pong.message for r in responses]
            finally:
                await upstream.stop(None)

        channels_opened, messages = asyncio.run(relay_concurrently())
        self.assertEqual(channels_opened, 1)
        self.assertEqual(messages, [f"{i} (relayed)" for i in range(20)])


if __name__ == "__main__":
    absltest.main()
