"""The smoke test of a revision at one of its URLs: every service it registers answers
grpc.health.v1 SERVING, then the checks its service declares pass (checks.py), on one channel.

Which services: the server's own reflection lists them (the kit's runtime registers health for
exactly those). The health of "" (the server as a whole) is asked too, as Cloud Run's probes do.
An https URL is Cloud Run's front end: TLS on 443 and an ID token for the service's URL, which
its invoker check verifies. An http URL is a local Cloud Run: plaintext h2c to host:port, with
the token all the same when it is on loopback (gRPC sends call credentials there only).
"""

from __future__ import annotations

import contextlib
import urllib.parse
from collections.abc import Callable

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from bazel.tools.release import checks
from bazel.tools.release.credentials import CredentialsError
from python.channels import channels

# Hosts as channels.split_server gives them (a .localhost name is dialled at 127.0.0.1).
LOOPBACK = ("localhost", "127.0.0.1", "[::1]")
# Reflection and health themselves are how we ask, not what we check.
NOT_CHECKED = (
    "grpc.health.v1.Health",
    "grpc.reflection.v1alpha.ServerReflection",
    "grpc.reflection.v1.ServerReflection",
)


class SmokeFailure(Exception):
    """The revision did not answer as a healthy server: one line."""


def open_channel(
    url: str, call_credentials: Callable[[], grpc.CallCredentials | None]
) -> grpc.Channel:
    """A channel to the server behind `url`, read as channels.connection_to_url reads a
    service URL, its `:authority` the URL's host."""
    try:
        connection = channels.connection_to_url(url)
    except ValueError as error:
        raise SmokeFailure(f"cannot smoke-test {url!r}: {error}") from None
    options = [("grpc.default_authority", urllib.parse.urlsplit(url).netloc)]
    if not connection.insecure:
        per_call = call_credentials()
        tls = grpc.ssl_channel_credentials()
        creds = tls if per_call is None else grpc.composite_channel_credentials(tls, per_call)
        return grpc.secure_channel(connection.target, creds, options)
    per_call = None
    if channels.split_server(connection.server)[0] in LOOPBACK:
        # A local Cloud Run may not ask for a token; it answers UNAUTHENTICATED if it does.
        with contextlib.suppress(CredentialsError):
            per_call = call_credentials()
    if per_call is not None:
        local = grpc.local_channel_credentials()
        return grpc.secure_channel(
            connection.target, grpc.composite_channel_credentials(local, per_call), options
        )
    return grpc.insecure_channel(connection.target, options)


def registered_services(channel: grpc.Channel, timeout: float) -> list[str]:
    stub = reflection_pb2_grpc.ServerReflectionStub(channel)
    request = reflection_pb2.ServerReflectionRequest(list_services="")
    names = []
    for response in stub.ServerReflectionInfo(
        iter([request]), timeout=timeout, wait_for_ready=True
    ):
        names += [s.name for s in response.list_services_response.service]
    return sorted(n for n in names if n not in NOT_CHECKED)


def check(
    url: str,
    call_credentials: Callable[[], grpc.CallCredentials | None],
    timeout: float,
    declared: list[checks.Check],
) -> list[str]:
    """The services found SERVING at `url` ("" first), then `declared` run there; SmokeFailure
    when a service is not SERVING, checks.CheckFailed when a check does not pass."""
    with open_channel(url, call_credentials) as channel:
        try:
            services = ["", *registered_services(channel, timeout)]
        except grpc.RpcError as error:
            raise SmokeFailure(f"{url}: reflection: {_status(error)}") from None
        health = health_pb2_grpc.HealthStub(channel)
        for service in services:
            try:
                answer = health.Check(
                    health_pb2.HealthCheckRequest(service=service),
                    timeout=timeout,
                    wait_for_ready=True,
                )
            except grpc.RpcError as error:
                raise SmokeFailure(
                    f"{url}: health of {service or '(server)'!s}: {_status(error)}"
                ) from None
            if answer.status != health_pb2.HealthCheckResponse.SERVING:
                state = health_pb2.HealthCheckResponse.ServingStatus.Name(answer.status)
                raise SmokeFailure(f"{url}: health of {service or '(server)'}: {state}")
        checks.run(channel, declared, timeout)
    return services


def _status(error: grpc.RpcError) -> str:
    code = error.code() if hasattr(error, "code") else None
    details = error.details() if hasattr(error, "details") else str(error)
    return f"{code.name if code else 'ERROR'}: {details}"
