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
    """Stands in for the server when services register; remembers the services' names."""

    def __init__(self, server: grpc.aio.Server, wrap: Wrap) -> None:
        self._server = server
        self._wrap = wrap
        self._service_names: dict[str, None] = {}  # in registration order, once each

    @property
    def service_names(self) -> list[str]:
        """Full names (`package.Service`) of the services registered through this registrar."""
        return list(self._service_names)

    def add_generic_rpc_handlers(self, handlers: Iterable[grpc.GenericRpcHandler]) -> None:
        for handler in handlers:
            if isinstance(handler, grpc.ServiceRpcHandler):
                self._service_names[handler.service_name()] = None
        self._server.add_generic_rpc_handlers(
            tuple(_WrappedGenericHandler(h, self._wrap) for h in handlers)
        )

    def add_registered_method_handlers(
        self, service: str, method_handlers: dict[str, grpc.RpcMethodHandler]
    ) -> None:
        self._service_names[service] = None
        self._server.add_registered_method_handlers(
            service,
            {name: self._wrap(f"/{service}/{name}", h) for name, h in method_handlers.items()},
        )


class _WrappedGenericHandler(grpc.GenericRpcHandler):
    def __init__(self, inner: grpc.GenericRpcHandler, wrap: Wrap) -> None:
        self._inner = inner
        self._wrap = wrap
        # Only methods the inner handler serves: the path of a call is the client's to choose,
        # and remembering every unknown one would let any client fill the memory.
        self._wrapped: dict[str, grpc.RpcMethodHandler] = {}

    def service(
        self, handler_call_details: grpc.HandlerCallDetails
    ) -> grpc.RpcMethodHandler | None:
        method = handler_call_details.method
        wrapped = self._wrapped.get(method)
        if wrapped is None:
            handler = self._inner.service(handler_call_details)
            if handler is None:
                return None
            wrapped = self._wrapped[method] = self._wrap(method, handler)
        return wrapped


class UnknownMethods(grpc.GenericRpcHandler):
    """Answers every method no service registered with UNIMPLEMENTED through `wrap`, so that
    such calls are logged like the others. Register it last. Nothing is kept per method."""

    def __init__(self, wrap: Wrap) -> None:
        self._wrap = wrap

    def service(self, handler_call_details: grpc.HandlerCallDetails) -> grpc.RpcMethodHandler:
        method = handler_call_details.method

        async def unimplemented(requests: Any, context: grpc.aio.ServicerContext) -> None:
            await context.abort(grpc.StatusCode.UNIMPLEMENTED, "unknown method")

        return self._wrap(method, grpc.stream_unary_rpc_method_handler(unimplemented))


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
