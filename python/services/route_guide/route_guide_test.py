"""RouteGuide's four methods, one of each of gRPC's kinds of call, against its real server
process over a socket (python/testing/serving.py starts it as Cloud Run would)."""

from __future__ import annotations

import os

import grpc
from absl.testing import absltest
from routeguide.v1 import route_guide_pb2 as pb
from routeguide.v1 import route_guide_pb2_grpc

from python.services.route_guide.feature_db import FeatureDb
from python.testing import serving

FEATURES = FeatureDb.load()


def point(lat: int, lon: int) -> pb.Point:
    return pb.Point(latitude=lat, longitude=lon)


class RouteGuideTest(absltest.TestCase):
    @classmethod
    def setUpClass(cls) -> None:
        super().setUpClass()
        server = cls.enterClassContext(serving.start(os.environ["SERVER"]))
        cls.stub = route_guide_pb2_grpc.RouteGuideStub(server.channel)
        cls.known = list(FEATURES.within_all())

    def test_get_feature_named_and_unnamed(self) -> None:
        named = self.known[0]
        self.assertEqual(self.stub.GetFeature(named.location, timeout=10), named)
        nowhere = point(1, 1)
        self.assertEqual(self.stub.GetFeature(nowhere, timeout=10), pb.Feature(location=nowhere))

    def test_get_feature_rejects_invalid_point(self) -> None:
        with self.assertRaises(grpc.RpcError) as caught:
            self.stub.GetFeature(point(910000000, 0), timeout=10)
        self.assertEqual(caught.exception.code(), grpc.StatusCode.INVALID_ARGUMENT)
        self.assertIn("outside latitude", caught.exception.details())

    def test_list_features_streams_every_feature_in_rectangle(self) -> None:
        corners = pb.Rectangle(lo=point(380000000, -1215000000), hi=point(370000000, -1230000000))
        listed = list(self.stub.ListFeatures(corners, timeout=10))
        self.assertLen(listed, len(FEATURES))  # the rectangle covers the whole generated map
        self.assertGreaterEqual(len(listed), 200)
        half = pb.Rectangle(lo=point(370000000, -1230000000), hi=point(375000000, -1215000000))
        expected = {f.name + str(f.location) for f in FEATURES.within(half)}
        got = {f.name + str(f.location) for f in self.stub.ListFeatures(half, timeout=10)}
        self.assertEqual(got, expected)
        self.assertLess(len(got), len(listed))

    def test_record_route_summarizes_client_stream(self) -> None:
        route = [self.known[0].location, point(370000000, -1220000000), self.known[1].location]
        summary = self.stub.RecordRoute(iter(route), timeout=10)
        self.assertEqual(summary.point_count, 3)
        self.assertEqual(summary.feature_count, 2)
        self.assertGreater(summary.distance, 0)

    def test_route_chat_returns_earlier_notes_at_same_place(self) -> None:
        here, there = point(1, 1), point(2, 2)
        notes = [
            pb.RouteNote(location=here, message="first"),
            pb.RouteNote(location=there, message="elsewhere"),
            pb.RouteNote(location=here, message="second"),
            pb.RouteNote(location=here, message="third"),
        ]
        replies = [n.message for n in self.stub.RouteChat(iter(notes), timeout=10)]
        self.assertEqual(replies, ["first", "first", "second"])


if __name__ == "__main__":
    absltest.main()
