"""RouteGuide, gRPC's example of the four kinds of call.

`bazel run //python/services/route_guide:server`
"""

from routeguide.v1 import route_guide_pb2_grpc

from python.runtime import app
from python.services.route_guide.feature_db import FeatureDb
from python.services.route_guide.route_guide_servicer import RouteGuideServicer


def services() -> list[app.Registration]:
    servicer = RouteGuideServicer(FeatureDb.load())
    return [(servicer, route_guide_pb2_grpc.add_RouteGuideServicer_to_server)]


if __name__ == "__main__":
    app.run("route-guide", services)
