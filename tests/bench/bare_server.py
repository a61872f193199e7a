"""The benchmark's baseline: the kit's test service's servicer (tests/services/kittest's
TestServicer, whose Unary and ServerStream the bench drives; Relay, which it does not, needs
python/channels) in a grpc.aio server with default options and nothing
else (no runtime: no interceptor, logging, health or reflection), so that the ratio to it is
the runtime's cost alone. Prints its port, serves until SIGTERM."""

import asyncio
import signal

import grpc
from kittest.v1 import test_service_pb2_grpc

from tests.services.kittest.servicer import TestServicer


async def main() -> None:
    server = grpc.aio.server()
    test_service_pb2_grpc.add_TestServiceServicer_to_server(TestServicer(), server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    print(f"bare server listening on [::]:{port}", flush=True)
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    await stop.wait()
    await server.stop(None)


if __name__ == "__main__":
    asyncio.run(main())
