"""Java and Python agree on route guide's wire: the same message (a nested message, negative
numbers), serialized by the stubs of one language, parses in the other's to an equal value.
Both languages' stubs come from the same proto_library targets (ping's wire_test has a
well-known type and non-ASCII text)."""

from __future__ import annotations

from absl.testing import absltest
from routeguide.v1 import route_guide_pb2

from tests.java.wire_check import WireCheckCase


def feature() -> route_guide_pb2.Feature:
    location = route_guide_pb2.Point(latitude=409_146_138, longitude=-746_188_906)
    return route_guide_pb2.Feature(name="Berkshire Valley Management Area Trail", location=location)


class WireTest(WireCheckCase):
    def test_java_reads_what_python_wrote(self) -> None:
        (self.directory / "feature.py.bin").write_bytes(feature().SerializeToString())
        self.assertEqual(
            self.java("read").splitlines(),
            [
                "name Berkshire Valley Management Area Trail",
                "location 409146138 -746188906",
                "equal true",
            ],
        )

    def test_python_reads_what_java_wrote(self) -> None:
        self.java("write")
        written = (self.directory / "feature.java.bin").read_bytes()
        self.assertEqual(route_guide_pb2.Feature.FromString(written), feature())


if __name__ == "__main__":
    absltest.main()
