"""Java and Python agree on ping's wire: the same message (a nested message, a well-known type,
non-ASCII text), serialized by the stubs of one language, parses in the other's to equal
values. Both languages' stubs come from the same proto_library targets (route guide's
wire_test has negative numbers)."""

from __future__ import annotations

from absl.testing import absltest
from google.protobuf import timestamp_pb2
from ping.v1 import ping_pb2

from tests.java.wire_check import WireCheckCase


def response() -> ping_pb2.Response:
    received = timestamp_pb2.Timestamp(seconds=1_795_241_207, nanos=123_456_789)
    pong = ping_pb2.Pong(index=7, message="héllo ☃", received_on=received)
    return ping_pb2.Response(pong=pong)


class WireTest(WireCheckCase):
    def test_java_reads_what_python_wrote(self) -> None:
        (self.directory / "response.py.bin").write_bytes(response().SerializeToString())
        self.assertEqual(
            self.java("read").splitlines(),
            [
                "index 7",
                "message héllo ☃",
                "received_on 1795241207 123456789",
                "equal true",
            ],
        )

    def test_python_reads_what_java_wrote(self) -> None:
        self.java("write")
        written = (self.directory / "response.java.bin").read_bytes()
        self.assertEqual(ping_pb2.Response.FromString(written), response())
        self.assertEqual(written, response().SerializeToString())  # the same bytes, too


if __name__ == "__main__":
    absltest.main()
