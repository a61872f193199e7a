"""RouteGuide: each of gRPC's four kinds of call, over the feature database."""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import AsyncIterator

import grpc
from routeguide.v1 import route_guide_pb2, route_guide_pb2_grpc

from python.services.route_guide.feature_db import FeatureDb, distance_meters, is_valid


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
        async for point in request_iterator:
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
        notes: dict[tuple[int, int], list[route_guide_pb2.RouteNote]] = defaultdict(list)
        async for note in request_iterator:
            await _reject_invalid(note.location, context)
            here = notes[(note.location.latitude, note.location.longitude)]
            for earlier in here:
                yield earlier
            here.append(note)
