"""SendUpstream to a service's URL through the local Cloud Run's front end, as on Cloud Run.

The relay is the real ping server with `--upstream=http://ping.kit-local.localhost:PORT`; the
front end is the local Cloud Run's own, in this process, applying the invoker check of a
private service; the upstream is the real ping server with `--auth_mode=cloud-run`. The relay's
google-auth finds the local Cloud Run's metadata endpoint (GCE_METADATA_HOST, as instances get
it) and sends the ID token it mints in X-Serverless-Authorization. The front end verifies it
and removes its signature; the upstream reads the caller from it and checks its
--allowed_invokers. Also: a relay whose tokens another key signed is refused at the front end,
and the relay's caller gets INTERNAL naming the upstream's UNAUTHENTICATED; an invoker not
allowed is refused by the upstream; the relay answers Send afterwards.
"""

from __future__ import annotations

import grpc
from absl.testing import absltest
from grpc import StatusCode
from ping.v1 import ping_pb2, ping_pb2_grpc

from tests.cloud_run.front_end_fixture import start_front_end
from tests.e2e.processes import PING_SERVER, Server
from tools.cloud_run.invoker_check import Access
from tools.cloud_run.metadata import INSTANCE_EMAIL, MetadataServer
from tools.cloud_run.tokens import TokenIssuer

HOST = "ping.kit-local.localhost"


def call(address: str, method: str, message: str) -> ping_pb2.Response:
    with grpc.insecure_channel(address) as channel:
        stub = ping_pb2_grpc.PingServiceStub(channel)
        return getattr(stub, method)(ping_pb2.Request(message=message), timeout=20)


class RelayThroughFrontEndTest(absltest.TestCase):
    @classmethod
    def setUpClass(cls) -> None:
        cls.issuer = TokenIssuer("http://127.0.0.1:1/token")
        cls.metadata = MetadataServer(cls.issuer)
        cls.metadata.start()
        cls.forger = MetadataServer(TokenIssuer("http://127.0.0.1:1/token"))
        cls.forger.start()

    @classmethod
    def tearDownClass(cls) -> None:
        cls.metadata.stop()
        cls.forger.stop()

    def upstream(self, allowed: str) -> Server:
        server = Server(
            "--auth_mode=cloud-run", f"--allowed_invokers={allowed}", binary_var=PING_SERVER
        )
        self.addCleanup(server.kill)
        return server

    def relay(self, front_end_port: int, metadata: MetadataServer) -> Server:
        env = {"GCE_METADATA_HOST": metadata.host, "GCE_METADATA_IP": metadata.host}
        server = Server(
            f"--upstream=http://{HOST}:{front_end_port}", binary_var=PING_SERVER, env=env
        )
        self.addCleanup(server.kill)
        return server

    def test_relayed_with_an_id_token_the_front_end_and_the_upstream_accept(self) -> None:
        upstream = self.upstream(INSTANCE_EMAIL)
        front_end, output = start_front_end(
            {HOST: upstream.port},
            Access(False),
            self.issuer.verify_id_token,
        )
        relay = self.relay(front_end.port, self.metadata)
        for index in range(3):  # the channel and its token are reused
            answer = call(relay.address, "SendUpstream", f"hi {index}")
            self.assertEqual(answer.pong.message, f"hi {index} (relayed)")
        self.assertIn(f"front end: {HOST} -> ", output.getvalue())
        self.assertNotRegex(output.getvalue(), r": 40[13] ")

    def test_a_token_another_key_signed_is_refused_at_the_front_end(self) -> None:
        upstream = self.upstream(INSTANCE_EMAIL)
        front_end, output = start_front_end(
            {HOST: upstream.port}, Access(False), self.issuer.verify_id_token
        )
        relay = self.relay(front_end.port, self.forger)
        with self.assertRaises(grpc.RpcError) as raised:
            call(relay.address, "SendUpstream", "forged")
        self.assertEqual(raised.exception.code(), StatusCode.INTERNAL)
        self.assertIn("answered UNAUTHENTICATED", raised.exception.details())
        self.assertIn(f"front end: {HOST}: 401 (the ID token is refused", output.getvalue())
        self.assertEqual(call(relay.address, "Send", "still").pong.message, "still")

    def test_an_invoker_the_upstream_does_not_allow_is_refused_there(self) -> None:
        upstream = self.upstream("someone-else@example.com")
        front_end, output = start_front_end(
            {HOST: upstream.port},
            Access(False),
            self.issuer.verify_id_token,
        )
        relay = self.relay(front_end.port, self.metadata)
        with self.assertRaises(grpc.RpcError) as raised:
            call(relay.address, "SendUpstream", "not allowed")
        self.assertEqual(raised.exception.code(), StatusCode.INTERNAL)
        self.assertIn("answered PERMISSION_DENIED", raised.exception.details())
        self.assertNotRegex(output.getvalue(), r": 40[13] ")  # the front end let it through


if __name__ == "__main__":
    absltest.main()
