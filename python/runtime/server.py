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
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NamedTuple

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection, reflection_pb2_grpc
from grpc_reflection.v1alpha._async import ReflectionServicer

from python.runtime import invoker_auth, logs
from python.runtime.config import ServerConfig
from python.runtime.handler_wrapping import UnknownMethods, WrappingRegistrar, chain
from python.runtime.health import HealthServicer
from python.runtime.invoker_auth import Authenticator, auth_wrap
from python.runtime.rpc_logging import Boundary

logger = logging.getLogger("server")

# A service as generated code registers it: the servicer and its `add_*Servicer_to_server`.
Registration = tuple[object, Callable[[Any, Any], None]]

# How long calls cut at shutdown get to unwind before the process exits.
CUT_CALLS_EXIT_SECONDS = 1.0


class BindError(Exception):
    """The port could not be bound."""


class Built(NamedTuple):
    """A server with every service registered and its port bound, not yet started."""

    server: grpc.aio.Server
    health: HealthServicer
    boundary: Boundary
    port: int


def build(config: ServerConfig, services: Sequence[Registration]) -> Built:
    server = grpc.aio.server(options=config.channel_options())
    logged = Boundary(config.project, config.rpc_logs, config.max_send_message_bytes)
    # Application services: logged, and guarded by the auth policy. Health and reflection:
    # logged, open. Unknown methods: logged, UNIMPLEMENTED.
    if config.auth.mode != invoker_auth.NONE:
        guarded = WrappingRegistrar(server, chain(logged, auth_wrap(Authenticator(config.auth))))
    else:
        guarded = WrappingRegistrar(server, logged)
    open_to_all = WrappingRegistrar(server, logged)
    for servicer, add_to_server in services:
        add_to_server(servicer, guarded)
    # Health knows exactly the services that registered, by the names they registered with.
    health = HealthServicer(guarded.service_names)
    health_pb2_grpc.add_HealthServicer_to_server(health, open_to_all)
    if config.reflection:
        health_name = health_pb2.DESCRIPTOR.services_by_name["Health"].full_name
        names = [*guarded.service_names, health_name, reflection.SERVICE_NAME]
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
    return Built(server, health, logged, port)


async def serve(name: str, config: ServerConfig, services: Sequence[Registration]) -> None:
    """Serves `services` until SIGTERM or Ctrl-C, then drains; `name` is for the log."""
    server, health, boundary, port = build(config, services)
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
    logger.info("%s listening on [::]:%d", name, port, extra={"fields": {"port": port}})

    await stopping.wait()
    logger.info("shutting down: in-flight calls have %.1f s", config.grace_seconds)
    await health.enter_graceful_shutdown()
    boundary.calls_cut_at = time.monotonic() + config.grace_seconds
    await server.stop(config.grace_seconds)
    # Calls cut by stop() end in tasks of their own: let them finish (and log) rather than be
    # cancelled by asyncio.run, which grpc.aio reports with a bare traceback on stderr.
    calls = asyncio.all_tasks() - {asyncio.current_task()}
    if calls:
        await asyncio.wait(calls, timeout=CUT_CALLS_EXIT_SECONDS)
    logger.info("stopped")
