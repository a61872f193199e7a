"""The benchmark's baseline: the same servicers in a grpc.aio server with default options and
nothing else (no interceptor, logging, health or reflection). Prints its port, serves until
SIGTERM."""

import asyncio
import signal

import grpc
from ping.v1 import ping_pb2_grpc
from routeguide.v1 import route_guide_pb2_grpc

from python.services.ping.ping_servicer import PingServicer
from python.services.route_guide.feature_db import FeatureDb
from python.services.route_guide.route_guide_servicer import RouteGuideServicer


async def main() -> None:
    server = grpc.aio.server()
    ping_pb2_grpc.add_PingServiceServicer_to_server(PingServicer(), server)
    route_guide_pb2_grpc.add_RouteGuideServicer_to_server(
        RouteGuideServicer(FeatureDb.load()), server
    )
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    print(f"bare server listening on [::]:{port}", flush=True)
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    await stop.wait()
    await server.stop(None)


if __name__ == "__main__":
    asyncio.run(main())
