"""Wrapping every method handler of a service once, when the service registers.

grpc.aio interceptors rebuild the handler on every call, which costs more CPU than a small
call itself. Here a service registers through a `WrappingRegistrar` standing in for the server
(`add_FooServicer_to_server(servicer, WrappingRegistrar(server, wrap))`), and `wrap` turns each
(method name, handler) into the handler the server keeps.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import grpc

Wrap = Callable[[str, grpc.RpcMethodHandler], grpc.RpcMethodHandler]
Behavior = Callable[..., Any]


class WrappingRegistrar:
    def __init__(self, server: grpc.aio.Server, wrap: Wrap) -> None:
        self._server = server
        self._wrap = wrap

    def add_generic_rpc_handlers(self, handlers: Iterable[grpc.GenericRpcHandler]) -> None:
        self._server.add_generic_rpc_handlers(
            tuple(_WrappedGenericHandler(h, self._wrap) for h in handlers)
        )

    def add_registered_method_handlers(
        self, service: str, method_handlers: dict[str, grpc.RpcMethodHandler]
    ) -> None:
        self._server.add_registered_method_handlers(
            service,
            {name: self._wrap(f"/{service}/{name}", h) for name, h in method_handlers.items()},
        )


class _WrappedGenericHandler(grpc.GenericRpcHandler):
    def __init__(self, inner: grpc.GenericRpcHandler, wrap: Wrap) -> None:
        self._inner = inner
        self._wrap = wrap
        self._wrapped: dict[str, grpc.RpcMethodHandler | None] = {}

    def service(self, handler_call_details: grpc.HandlerCallDetails) -> grpc.RpcMethodHandler:
        method = handler_call_details.method
        if method not in self._wrapped:
            handler = self._inner.service(handler_call_details)
            self._wrapped[method] = handler and self._wrap(method, handler)
        return self._wrapped[method]


def map_behavior(
    handler: grpc.RpcMethodHandler, wrap_behavior: Callable[[Behavior], Behavior]
) -> grpc.RpcMethodHandler:
    """The handler with its behavior (whichever of the four call kinds it is) wrapped."""
    for kind in ("unary_unary", "unary_stream", "stream_unary", "stream_stream"):
        if behavior := getattr(handler, kind):
            return handler._replace(**{kind: wrap_behavior(behavior)})
    return handler


def chain(*wraps: Wrap) -> Wrap:
    """`chain(outer, inner)`: inner wraps the handler first, outer wraps the result."""

    def wrap(method: str, handler: grpc.RpcMethodHandler) -> grpc.RpcMethodHandler:
        for one in reversed(wraps):
            handler = one(method, handler)
        return handler

    return wrap
