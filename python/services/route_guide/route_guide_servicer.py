"""RouteGuide: each of gRPC's four kinds of call, over the feature database.

A sample that teams copy, so every call's work is bounded by what the client sends: each request
stream has a limit of its own (tighter than the server's --max_stream_* flags, which apply too),
and RouteChat keeps a bounded history (note_history.py). ListFeatures answers one request with
at most the whole map.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

import grpc
from routeguide.v1 import route_guide_pb2, route_guide_pb2_grpc

from python.runtime.stream_limits import StreamLimit, limited
from python.services.route_guide.feature_db import FeatureDb, distance_meters, is_valid
from python.services.route_guide.note_history import NoteHistory

# A route of points is a few bytes each: the count is what binds.
RECORD_ROUTE_LIMIT = StreamLimit(messages=5_000)
ROUTE_CHAT_LIMIT = StreamLimit(messages=5_000, bytes=16 * 1024 * 1024)
# RouteChat answers a note with at most this many earlier notes at its point...
NOTES_KEPT_PER_POINT = 8
# ...and a call keeps at most this many notes, and bytes of them, the oldest going first.
HISTORY_NOTES = 1_000
HISTORY_BYTES = 4 * 1024 * 1024


async def _reject_invalid(point: route_guide_pb2.Point, context: grpc.aio.ServicerContext) -> None:
    if not is_valid(point):
        await context.abort(
            grpc.StatusCode.INVALID_ARGUMENT,
            f"point ({point.latitude}, {point.longitude}) is outside latitude +-90e7,"
            " longitude +-180e7",
        )


class RouteGuideServicer(route_guide_pb2_grpc.RouteGuideServicer):
    def __init__(self, features: FeatureDb) -> None:
        self._features = features

    async def GetFeature(
        self, request: route_guide_pb2.Point, context: grpc.aio.ServicerContext
    ) -> route_guide_pb2.Feature:
        await _reject_invalid(request, context)
        return self._features.at(request) or route_guide_pb2.Feature(location=request)

    async def ListFeatures(
        self, request: route_guide_pb2.Rectangle, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[route_guide_pb2.Feature]:
        await _reject_invalid(request.lo, context)
        await _reject_invalid(request.hi, context)
        for feature in self._features.within(request):
            yield feature

    async def RecordRoute(
        self,
        request_iterator: AsyncIterator[route_guide_pb2.Point],
        context: grpc.aio.ServicerContext,
    ) -> route_guide_pb2.RouteSummary:
        start = time.monotonic()
        point_count = feature_count = 0
        distance = 0.0
        previous = None
        async for point in limited(request_iterator, context, RECORD_ROUTE_LIMIT):
            await _reject_invalid(point, context)
            point_count += 1
            if self._features.at(point):
                feature_count += 1
            if previous is not None:
                distance += distance_meters(previous, point)
            previous = point
        return route_guide_pb2.RouteSummary(
            point_count=point_count,
            feature_count=feature_count,
            distance=round(distance),
            elapsed_time=round(time.monotonic() - start),
        )

    async def RouteChat(
        self,
        request_iterator: AsyncIterator[route_guide_pb2.RouteNote],
        context: grpc.aio.ServicerContext,
    ) -> AsyncIterator[route_guide_pb2.RouteNote]:
        # Notes of this call only: a chat is one client's conversation, not shared state.
        history = NoteHistory(NOTES_KEPT_PER_POINT, HISTORY_NOTES, HISTORY_BYTES)
        async for note in limited(request_iterator, context, ROUTE_CHAT_LIMIT):
            await _reject_invalid(note.location, context)
            for earlier in history.at(note.location):
                yield earlier
            history.add(note)
