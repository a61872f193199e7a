"""The Python client against a hostile server, one that puts terminal controls in its service
names and error details: `list`, `describe` and `call` print them escaped, never raw
(docs/client.md). The Java client's errors are checked the same way in
//python/services/ping/java:client_e2e_test."""

from __future__ import annotations

import contextlib
import subprocess
from concurrent import futures

import grpc
from absl.testing import absltest
from google.protobuf import descriptor_pb2, descriptor_pool, empty_pb2
from grpc_reflection.v1alpha import reflection

from tests.e2e.processes import run


class HostileServerTest(absltest.TestCase):
    """A server whose service names and error details carry terminal controls (ESC, BEL, C1
    CSI U+009B, a newline): the client prints them escaped as octal, never raw."""

    HOSTILE = "evil.v1.E\x1b]0;pwned\x07vil\x9b2J\nfake line"
    ESCAPED = "evil.v1.E\\033]0;pwned\\007vil\\302\\2332J\\012fake line"
    RAW_CONTROL = "[\x00-\x09\x0b-\x1f\x7f-\x9f]"  # any but the newline ending a line

    def setUp(self) -> None:
        # evil.v1.Evil/Do(Empty) returns (Empty), in the pool reflection answers from.
        proto = descriptor_pb2.FileDescriptorProto(
            name="evil/v1/evil.proto",
            package="evil.v1",
            dependency=[empty_pb2.DESCRIPTOR.name],
            syntax="proto3",
        )
        empty = ".google.protobuf.Empty"
        proto.service.add(name="Evil").method.add(name="Do", input_type=empty, output_type=empty)
        with contextlib.suppress(TypeError):  # already there: another run in this process
            descriptor_pool.Default().AddSerializedFile(proto.SerializeToString())

        def refuse(_request: bytes, context: grpc.ServicerContext) -> bytes:
            context.abort(grpc.StatusCode.PERMISSION_DENIED, self.HOSTILE)

        server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
        server.add_generic_rpc_handlers(
            (
                grpc.method_handlers_generic_handler(
                    "evil.v1.Evil", {"Do": grpc.unary_unary_rpc_method_handler(refuse)}
                ),
            )
        )
        reflection.enable_server_reflection(["evil.v1.Evil", self.HOSTILE], server)
        self.address = f"127.0.0.1:{server.add_insecure_port('127.0.0.1:0')}"
        server.start()
        self.addCleanup(server.stop, None)

    def client(self, *args: str) -> subprocess.CompletedProcess[str]:
        return run("CLIENT_BIN", f"--server={self.address}", "--insecure", *args)

    def test_names_and_details_are_escaped(self) -> None:
        listed = self.client("list")
        self.assertEqual(listed.returncode, 0, listed.stderr)
        self.assertEqual(sorted(listed.stdout.splitlines()), sorted(["evil.v1.Evil", self.ESCAPED]))
        called = self.client("call", "evil.v1.Evil/Do", "{}")
        self.assertEqual((called.returncode, called.stdout), (1, ""))
        self.assertEqual(called.stderr, f"client: PERMISSION_DENIED: {self.ESCAPED}\n")
        # describe looks each listed name up, and the server knows no symbol of that name.
        described = self.client("describe")
        self.assertNotEqual(described.returncode, 0)
        self.assertLen(described.stderr.splitlines(), 1, described.stderr)
        self.assertNotRegex(described.stdout + described.stderr, self.RAW_CONTROL)
        self.assertIn("evil.v1.E\\033]0;", described.stderr)
        # The server still answers.
        self.assertEqual(self.client("describe", "evil.v1.Evil").returncode, 0)


if __name__ == "__main__":
    absltest.main()
