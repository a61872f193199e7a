"""One server process: builds the grpc.aio server, serves until SIGTERM, drains, returns.

The life of a Cloud Run instance: health says NOT_SERVING until every service is registered and
the port is bound, then SERVING. SIGTERM (Cloud Run's notice, 10 s before SIGKILL) flips health
to NOT_SERVING at once, stops new calls, and gives in-flight ones `grace_seconds` to finish. A
second SIGTERM or Ctrl-C exits at once.

grpc.aio's serving loop stops for good on a request path that is not UTF-8 (grpcio decodes it
before any handler could refuse it): its listener closes while the process lives on, so one
request would leave the instance answering nothing. The runtime checks that the loop still
serves and, when it has stopped, serves again on a new server on the same port; the calls the
old one was running finish there, as at a drain.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import os
import signal
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection, reflection_pb2_grpc
from grpc_reflection.v1alpha._async import ReflectionServicer

from python.runtime import invoker_auth, logs, stream_limits, telemetry, undecodable
from python.runtime.call_boundary import Boundary
from python.runtime.config import ServerConfig
from python.runtime.handler_wrapping import UnknownMethods, WrappingRegistrar, chain
from python.runtime.health import HealthServicer
from python.runtime.invoker_auth import Authenticator, auth_wrap

if TYPE_CHECKING:
    from python.runtime.otel_export import ServerTelemetry

logger = logging.getLogger("server")

# A service as generated code registers it: the servicer and its `add_*Servicer_to_server`.
Registration = tuple[object, Callable[[Any, Any], None]]

# How long calls cut at shutdown get to unwind before the process exits.
CUT_CALLS_EXIT_SECONDS = 1.0
# How often serve() checks that gRPC's serving loop still accepts calls: the longest an
# instance refuses connections after the loop stopped.
SERVING_CHECK_SECONDS = 0.2


class BindError(Exception):
    """The port could not be bound."""


class Built(NamedTuple):
    """A server with every service registered and its port bound, not yet started."""

    server: grpc.aio.Server
    health: HealthServicer
    boundary: Boundary
    port: int


def build(
    config: ServerConfig,
    services: Sequence[Registration],
    calls_telemetry: ServerTelemetry | None = None,
) -> Built:
    server = grpc.aio.server(options=config.channel_options())
    logged = Boundary(
        config.project, config.rpc_logs, config.max_send_message_bytes, calls_telemetry
    )
    limited = stream_limits.wrap(config.stream_limit)
    # Application services: logged, guarded by the auth policy, request streams limited.
    # Health and reflection: logged, open, limited. Unknown methods: logged, UNIMPLEMENTED.
    if config.auth.mode != invoker_auth.NONE:
        authenticated = auth_wrap(Authenticator(config.auth))
        guarded = WrappingRegistrar(server, chain(logged, authenticated, limited))
    else:
        guarded = WrappingRegistrar(server, chain(logged, limited))
    open_to_all = WrappingRegistrar(server, chain(logged, limited))
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
    undecodable.hide_from_logs()
    calls_telemetry = telemetry.from_environment()
    built = build(config, services, calls_telemetry)
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.set_exception_handler(undecodable.loop_exception_handler)

    def on_signal(signum: int) -> None:
        if stopping.is_set():
            logger.warning("second %s: exiting now", signal.Signals(signum).name)
            logs.flush()
            os._exit(128 + signum)
        stopping.set()

    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, on_signal, signum)

    await _start(built)
    logger.info("%s listening on [::]:%d", name, built.port, extra={"fields": {"port": built.port}})
    # Servers whose serving loop stopped, until the calls they were running have ended.
    retiring: dict[Built, asyncio.Task[None]] = {}
    while not await _stopped_or_broken(built.server, stopping):
        logger.error(
            "gRPC's serving loop stopped (grpcio stops it on a request path that is not UTF-8):"
            " serving again on [::]:%d",
            built.port,
        )
        retiring[built] = asyncio.create_task(_retire(built, retiring))
        built = build(dataclasses.replace(config, port=built.port), services, calls_telemetry)
        await _start(built)

    logger.info("shutting down: in-flight calls have %.1f s", config.grace_seconds)
    await built.health.enter_graceful_shutdown()
    everyone = [built, *retiring]
    for one in everyone:
        one.boundary.calls_cut_at = time.monotonic() + config.grace_seconds
    await asyncio.gather(*(one.server.stop(config.grace_seconds) for one in everyone))
    # Calls cut by stop() end in tasks of their own: let them finish (and log) rather than be
    # cancelled by asyncio.run, which grpc.aio reports with a bare traceback on stderr.
    calls = asyncio.all_tasks() - {asyncio.current_task()}
    if calls:
        await asyncio.wait(calls, timeout=CUT_CALLS_EXIT_SECONDS)
    if calls_telemetry is not None:
        await asyncio.to_thread(calls_telemetry.shutdown)
    logger.info("stopped")


async def _start(built: Built) -> None:
    await built.server.start()
    await built.health.set_serving()


async def _stopped_or_broken(server: grpc.aio.Server, stopping: asyncio.Event) -> bool:
    """True once `stopping` is set; False as soon as gRPC's serving loop has stopped without
    being asked to. grpc.aio says so nowhere but in its server's state (`is_running`)."""
    while not stopping.is_set():
        if not server._server.is_running():  # private: no public API tells
            return False
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stopping.wait(), SERVING_CHECK_SECONDS)
    return True


async def _retire(built: Built, retiring: dict[Built, asyncio.Task[None]]) -> None:
    """Frees a server whose serving loop stopped, once the calls it was running have ended
    (grpc.aio then reports the loop's exception, which is no news here)."""
    with contextlib.suppress(Exception):  # the loop's exception, logged when it stopped
        await built.server.wait_for_termination()
    await built.server.stop(None)
    retiring.pop(built, None)
