"""A server's services, methods and message types, as protobuf descriptors it sends through gRPC
server reflection (v1alpha, what the kit's runtime serves): the client needs no generated code to
call a method, only what the server says about it.

grpcio-reflection's ProtoReflectionDescriptorDatabase asks the server one question per file it
needs, and a DescriptorPool on top of it resolves names and dependencies. Its calls go through
an interceptor that gives each one the command's deadline and metadata: on its own it would wait
for a server that never answers for ever, and would leave out a header the server may need.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
from collections.abc import Iterator, Sequence

import grpc
from google.protobuf import descriptor, descriptor_pool
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import (
    ProtoReflectionDescriptorDatabase,
)
from grpc_reflection.v1alpha.reflection import SERVICE_NAME as REFLECTION_SERVICE

from python.client.headers import Metadatum

Descriptor = (
    descriptor.ServiceDescriptor
    | descriptor.MethodDescriptor
    | descriptor.Descriptor
    | descriptor.EnumDescriptor
)


@dataclasses.dataclass(frozen=True)
class CallOptions:
    """What every call of a command carries, reflection's included."""

    timeout: float
    wait_for_ready: bool
    metadata: Sequence[Metadatum]

    def as_kwargs(self) -> dict:
        return {
            "timeout": self.timeout,
            "wait_for_ready": self.wait_for_ready,
            "metadata": list(self.metadata) or None,
        }


class NoReflection(grpc.RpcError):
    """The server answered, but not to reflection: reported as a failed call (exit 1)."""

    def code(self) -> grpc.StatusCode:
        return grpc.StatusCode.UNIMPLEMENTED

    def details(self) -> str:
        return (
            f"the server does not serve reflection ({REFLECTION_SERVICE}), which call, list and"
            " describe need (a kit server started with --noreflection?)"
        )


@dataclasses.dataclass(frozen=True)
class _Details(grpc.ClientCallDetails):
    method: str
    timeout: float | None
    metadata: Sequence[Metadatum] | None
    credentials: grpc.CallCredentials | None
    wait_for_ready: bool | None
    compression: grpc.Compression | None


class _WithCallOptions(grpc.StreamStreamClientInterceptor):
    """Reflection's calls (bidirectional streams, one request each) with the command's options,
    each read to its end: the database reads one response and drops the call, which cancels it,
    and the server would log every lookup as CANCELLED."""

    def __init__(self, options: CallOptions) -> None:
        self._options = options

    def intercept_stream_stream(self, continuation, client_call_details, request_iterator):
        details = _Details(
            method=client_call_details.method,
            credentials=client_call_details.credentials,
            compression=client_call_details.compression,
            **self._options.as_kwargs(),
        )
        return iter(list(continuation(details, request_iterator)))


class Reflection:
    """Names resolved through the server's reflection service, on the command's channel."""

    def __init__(self, channel: grpc.Channel, options: CallOptions) -> None:
        intercepted = grpc.intercept_channel(channel, _WithCallOptions(options))
        self._database = ProtoReflectionDescriptorDatabase(intercepted)
        self.pool = descriptor_pool.DescriptorPool(self._database)

    def services(self) -> list[str]:
        with _reflection_errors():
            return sorted(self._database.get_services())

    def service(self, name: str) -> descriptor.ServiceDescriptor:
        """By full name (routeguide.v1.RouteGuide), or by a last part only one service has
        (RouteGuide, v1.RouteGuide)."""
        found = self._find(self.pool.FindServiceByName, name)
        if found is not None:
            return found
        services = self.services()
        matches = [full for full in services if full.endswith("." + name)]
        if len(matches) == 1:
            return self.pool.FindServiceByName(matches[0])
        if matches:
            raise argparse.ArgumentTypeError(f"{name} could be any of: {', '.join(matches)}")
        raise argparse.ArgumentTypeError(
            f"no service {name}; the server has: {', '.join(services)}"
        )

    def method(self, spec: str) -> descriptor.MethodDescriptor:
        """`SERVICE/METHOD` or `SERVICE.METHOD`, as grpcurl takes them."""
        service_name, method_name = _split_method(spec)
        try:
            service = self.service(service_name)
        except argparse.ArgumentTypeError:
            whole = self._find(self.pool.FindServiceByName, spec)
            if whole is None:
                raise
            raise argparse.ArgumentTypeError(
                f"{spec} is a service; a method is SERVICE/METHOD, and it has: {_names(whole)}"
            ) from None
        method = service.methods_by_name.get(method_name)
        if method is None:
            raise argparse.ArgumentTypeError(
                f"no method {method_name} in {service.full_name}; it has: {_names(service)}"
            )
        return method

    def symbol(self, name: str) -> Descriptor:
        """A service, a method (`SERVICE/METHOD` too), a message or an enum type."""
        if "/" in name:
            return self.method(name)
        for find in (
            self.pool.FindServiceByName,
            self.pool.FindMessageTypeByName,
            self.pool.FindEnumTypeByName,
        ):
            found = self._find(find, name)
            if found is not None:
                return found
        service_name, _, method_name = name.rpartition(".")
        service = self._find(self.pool.FindServiceByName, service_name)
        if service is not None and method_name in service.methods_by_name:
            return service.methods_by_name[method_name]
        try:
            return self.service(name)  # a last part of a service's name
        except argparse.ArgumentTypeError:
            raise argparse.ArgumentTypeError(
                f"no service, method, message or enum {name}; the server's services:"
                f" {', '.join(self.services())}"
            ) from None

    @staticmethod
    def _find(find, name: str):
        """`find(name)`, or None when the server knows no such symbol."""
        with _reflection_errors():
            try:
                return find(name)
            except KeyError:
                return None


def _names(service: descriptor.ServiceDescriptor) -> str:
    return ", ".join(method.name for method in service.methods)


def _split_method(spec: str) -> tuple[str, str]:
    separator = "/" if "/" in spec else "."
    service, _, method = spec.lstrip("/").rpartition(separator)
    if not service or not method:
        raise argparse.ArgumentTypeError(
            f"a method is SERVICE/METHOD or SERVICE.METHOD (routeguide.v1.RouteGuide/GetFeature),"
            f" got {spec!r}"
        )
    return service, method


@contextlib.contextmanager
def _reflection_errors() -> Iterator[None]:
    """UNIMPLEMENTED from reflection's calls as NoReflection; other RpcErrors as they are."""
    try:
        yield
    except grpc.RpcError as error:
        if isinstance(error, NoReflection) or error.code() is not grpc.StatusCode.UNIMPLEMENTED:
            raise
        raise NoReflection() from None
