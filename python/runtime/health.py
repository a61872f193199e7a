"""grpc.health.v1.Health that reports readiness and shutdown, and lets shutdown finish early.

NOT_SERVING until the server says it is ready; SERVING for the overall service "" and each
registered service name; NOT_SERVING for good once shutdown starts. Unlike the reference
servicer, Watch streams end (OK) right after they have sent NOT_SERVING, so an open Watch does
not hold a draining server for the whole grace period.
"""

from __future__ import annotations

import asyncio

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING
SERVICE_UNKNOWN = health_pb2.HealthCheckResponse.SERVICE_UNKNOWN
OVERALL = ""


class HealthServicer(health_pb2_grpc.HealthServicer):
    def __init__(self, services: list[str]) -> None:
        self._status = dict.fromkeys([OVERALL, *services], NOT_SERVING)
        self._changed = asyncio.Condition()
        self._shutting_down = False

    async def set_serving(self) -> None:
        if not self._shutting_down:
            await self._set_all(SERVING)

    async def enter_graceful_shutdown(self) -> None:
        self._shutting_down = True
        await self._set_all(NOT_SERVING)

    async def _set_all(self, status: health_pb2.HealthCheckResponse.ServingStatus) -> None:
        async with self._changed:
            self._status = dict.fromkeys(self._status, status)
            self._changed.notify_all()

    async def Check(
        self, request: health_pb2.HealthCheckRequest, context: grpc.aio.ServicerContext
    ) -> health_pb2.HealthCheckResponse:
        status = self._status.get(request.service)
        if status is None:
            await context.abort(grpc.StatusCode.NOT_FOUND, f"unknown service {request.service!r}")
        return health_pb2.HealthCheckResponse(status=status)

    async def Watch(
        self, request: health_pb2.HealthCheckRequest, context: grpc.aio.ServicerContext
    ) -> None:
        last = None
        while True:
            status = self._status.get(request.service, SERVICE_UNKNOWN)
            if status != last:
                # Written outside the lock: a slow watcher must not stall status changes.
                await context.write(health_pb2.HealthCheckResponse(status=status))
                last = status
            if self._shutting_down:
                return
            async with self._changed:
                if self._status.get(request.service, SERVICE_UNKNOWN) == last:
                    await self._changed.wait()
