"""EchoService, a Cloud Run service declared only in the test tree: the kit's macro and runtime
need nothing of //deploy or of the repository's own services to build, push and serve it."""

import asyncio

import grpc
from echo.v1 import echo_pb2, echo_pb2_grpc
from pong.v1 import pong_pb2

from python.runtime import app


class EchoServicer(echo_pb2_grpc.EchoServiceServicer):
    async def Echo(
        self, request: echo_pb2.EchoRequest, context: grpc.aio.ServicerContext
    ) -> pong_pb2.Pong:
        await asyncio.sleep(request.delay.ToTimedelta().total_seconds())
        return request.pong


if __name__ == "__main__":
    app.run("echo", lambda: [(EchoServicer(), echo_pb2_grpc.add_EchoServiceServicer_to_server)])
