"""EchoService answering in YAML: a test-only service whose code imports pyyaml, a distribution
of the @pypi hub that no other service depends on. Its image must carry pyyaml because its
binary depends on it (py_packages_layer), or it fails with ImportError on its first start;
its image test imports this module and calls the service in the image."""

import grpc
import yaml
from echo.v1 import echo_pb2, echo_pb2_grpc
from pong.v1 import pong_pb2

from python.runtime import app


class YamlEchoServicer(echo_pb2_grpc.EchoServiceServicer):
    async def Echo(
        self, request: echo_pb2.EchoRequest, context: grpc.aio.ServicerContext
    ) -> pong_pb2.Pong:
        return pong_pb2.Pong(message=yaml.safe_dump({"echo": request.pong.message}))


if __name__ == "__main__":
    app.run(
        "yaml-echo", lambda: [(YamlEchoServicer(), echo_pb2_grpc.add_EchoServiceServicer_to_server)]
    )
