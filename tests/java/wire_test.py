"""Java and Python agree on the wire: the same messages (a nested message, a well-known type,
non-ASCII text, negative numbers), serialized by the stubs of one language, parse in
the other's to equal values. Both languages' stubs come from the same proto_library targets."""

from __future__ import annotations

import os
import subprocess
import tempfile
from pathlib import Path

from absl.testing import absltest
from google.protobuf import timestamp_pb2
from ping.v1 import ping_pb2
from routeguide.v1 import route_guide_pb2

WIRE_CHECK = os.environ["WIRE_CHECK"]


def response() -> ping_pb2.Response:
    received = timestamp_pb2.Timestamp(seconds=1_795_241_207, nanos=123_456_789)
    pong = ping_pb2.Pong(index=7, message="héllo ☃", received_on=received)
    return ping_pb2.Response(pong=pong)


def feature() -> route_guide_pb2.Feature:
    location = route_guide_pb2.Point(latitude=409_146_138, longitude=-746_188_906)
    return route_guide_pb2.Feature(name="Berkshire Valley Management Area Trail", location=location)


class WireTest(absltest.TestCase):
    def setUp(self) -> None:
        super().setUp()
        self.directory = Path(tempfile.mkdtemp(dir=os.environ.get("TEST_TMPDIR")))

    def java(self, mode: str) -> str:
        result = subprocess.run(
            [WIRE_CHECK, mode, str(self.directory)],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        self.assertEqual(result.returncode, 0, result.stderr)
        return result.stdout

    def test_java_reads_what_python_wrote(self) -> None:
        (self.directory / "response.py.bin").write_bytes(response().SerializeToString())
        (self.directory / "feature.py.bin").write_bytes(feature().SerializeToString())
        self.assertEqual(
            self.java("read").splitlines(),
            [
                "index 7",
                "message héllo ☃",
                "received_on 1795241207 123456789",
                "name Berkshire Valley Management Area Trail",
                "location 409146138 -746188906",
                "equal true",
            ],
        )

    def test_python_reads_what_java_wrote(self) -> None:
        self.java("write")
        written = (self.directory / "response.java.bin").read_bytes()
        self.assertEqual(ping_pb2.Response.FromString(written), response())
        self.assertEqual(written, response().SerializeToString())  # the same bytes, too
        written = (self.directory / "feature.java.bin").read_bytes()
        self.assertEqual(route_guide_pb2.Feature.FromString(written), feature())


if __name__ == "__main__":
    absltest.main()
