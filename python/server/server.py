"""One server process: builds the grpc.aio server, serves until SIGTERM, drains, returns.

The life of a Cloud Run instance: health says NOT_SERVING until every service is registered and
the port is bound, then SERVING. SIGTERM (Cloud Run's notice, 10 s before SIGKILL) flips health
to NOT_SERVING at once, stops new calls, and gives in-flight ones `grace_seconds` to finish. A
second SIGTERM or Ctrl-C exits at once.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection, reflection_pb2_grpc
from grpc_reflection.v1alpha._async import ReflectionServicer
from ping.v1 import ping_pb2, ping_pb2_grpc
from routeguide.v1 import route_guide_pb2, route_guide_pb2_grpc

from python.routeguide.feature_db import FeatureDb
from python.server import invoker_auth, logs
from python.server.config import ServerConfig
from python.server.handler_wrapping import UnknownMethods, WrappingRegistrar, chain
from python.server.health import HealthServicer
from python.server.invoker_auth import Authenticator, auth_wrap
from python.server.ping_servicer import PingServicer
from python.server.route_guide_servicer import RouteGuideServicer
from python.server.rpc_logging import logging_wrap

logger = logging.getLogger("server")

SERVICES = [
    ping_pb2.DESCRIPTOR.services_by_name["PingService"].full_name,
    route_guide_pb2.DESCRIPTOR.services_by_name["RouteGuide"].full_name,
]


class BindError(Exception):
    """The port could not be bound."""


def build(config: ServerConfig, features: FeatureDb) -> tuple[grpc.aio.Server, HealthServicer, int]:
    """The server with every service registered and its port bound, not yet started."""
    server = grpc.aio.server(options=config.channel_options())
    logged = logging_wrap(config.project, config.rpc_logs, config.max_send_message_bytes)
    # Application services: logged, and guarded by the auth policy. Health and reflection:
    # logged, open. Unknown methods: logged, UNIMPLEMENTED.
    if config.auth.mode != invoker_auth.NONE:
        guarded = WrappingRegistrar(server, chain(logged, auth_wrap(Authenticator(config.auth))))
    else:
        guarded = WrappingRegistrar(server, logged)
    open_to_all = WrappingRegistrar(server, logged)
    ping_pb2_grpc.add_PingServiceServicer_to_server(PingServicer(config.upstream), guarded)
    route_guide_pb2_grpc.add_RouteGuideServicer_to_server(RouteGuideServicer(features), guarded)
    health = HealthServicer(SERVICES)
    health_pb2_grpc.add_HealthServicer_to_server(health, open_to_all)
    if config.reflection:
        health_name = health_pb2.DESCRIPTOR.services_by_name["Health"].full_name
        names = [*SERVICES, health_name, reflection.SERVICE_NAME]
        reflection_pb2_grpc.add_ServerReflectionServicer_to_server(
            ReflectionServicer(names), open_to_all
        )
    server.add_generic_rpc_handlers((UnknownMethods(logged),))
    address = f"[::]:{config.port}"
    try:
        if config.tls_cert_file and config.tls_key_file:
            key, cert = (Path(f).read_bytes() for f in (config.tls_key_file, config.tls_cert_file))
            port = server.add_secure_port(address, grpc.ssl_server_credentials([(key, cert)]))
        else:
            port = server.add_insecure_port(address)
    except RuntimeError:
        raise BindError(f"cannot listen on {address}") from None
    return server, health, port


async def serve(config: ServerConfig, features: FeatureDb) -> None:
    server, health, port = build(config, features)
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()

    def on_signal(signum: int) -> None:
        if stopping.is_set():
            logger.warning("second %s: exiting now", signal.Signals(signum).name)
            logs.flush()
            os._exit(128 + signum)
        stopping.set()

    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, on_signal, signum)

    await server.start()
    await health.set_serving()
    logger.info("ping server listening on [::]:%d", port, extra={"fields": {"port": port}})

    await stopping.wait()
    logger.info("shutting down: in-flight calls have %.1f s", config.grace_seconds)
    await health.enter_graceful_shutdown()
    await server.stop(config.grace_seconds)
    logger.info("stopped")
