"""The smoke checks a service declares (cloud_run_service's `smoke_checks`): unary calls made at
the candidate's tag URL after health, each expecting a status code and, optionally, a response
that contains given fields.

The build validated every field (bazel/private/smoke_checks.bzl), so they are read as they are.
The request is built from the descriptors the server sends through reflection, with the
client's reflection library: the release tool needs no generated code of the user's services.
"""

from __future__ import annotations

import argparse
import dataclasses
import json

import grpc
from google.protobuf import json_format, message_factory

from python.client.server_reflection import CallOptions, Reflection


class CheckFailed(Exception):
    """A check did not answer as declared: one line, the method, what was expected, what came."""


@dataclasses.dataclass(frozen=True)
class Check:
    method: str  # package.Service/Method
    request: dict
    code: str  # a grpc.StatusCode name
    response: dict | None  # fields the response must contain, if given

    def expected(self) -> str:
        if self.response is None:
            return self.code
        return f"{self.code} with {_compact(self.response)}"


def from_spec(entries: list[dict]) -> list[Check]:
    return [Check(e["method"], e["request"], e["code"], e["response"]) for e in entries]


def contains(expected: object, actual: object) -> bool:
    """Whether `actual` has every field of `expected`, recursively through objects; any other
    value (lists included) must be equal."""
    if isinstance(expected, dict):
        return isinstance(actual, dict) and all(
            key in actual and contains(value, actual[key]) for key, value in expected.items()
        )
    return expected == actual


def run(channel: grpc.Channel, checks: list[Check], timeout: float) -> None:
    """Each check in turn on `channel`; CheckFailed on the first that does not pass."""
    if not checks:
        return
    reflection = Reflection(channel, CallOptions(timeout, wait_for_ready=True, metadata=()))
    for check in checks:
        code, got = _call(reflection, channel, check, timeout)
        passed = code == check.code and (
            check.response is None or (got is not None and contains(check.response, got))
        )
        if not passed:
            came = _compact(got) if got is not None else ""
            raise CheckFailed(
                f"check {check.method}: expected {check.expected()}, got {code} {came}".rstrip()
            )


def _call(
    reflection: Reflection, channel: grpc.Channel, check: Check, timeout: float
) -> tuple[str, dict | str | None]:
    """The status name and the response as JSON (the status details when not OK)."""
    try:
        method = reflection.method(check.method)
    except argparse.ArgumentTypeError as error:
        raise CheckFailed(
            f"check {check.method}: expected {check.expected()}, got {error}"
        ) from None
    except grpc.RpcError as error:
        return _failure(error)
    if method.client_streaming or method.server_streaming:
        raise CheckFailed(f"check {check.method}: a streaming method; checks call unary ones only")
    request_class = message_factory.GetMessageClass(method.input_type)
    response_class = message_factory.GetMessageClass(method.output_type)
    try:
        request = json_format.ParseDict(
            check.request, request_class(), descriptor_pool=reflection.pool
        )
    except json_format.ParseError as error:
        raise CheckFailed(
            f"check {check.method}: the request does not fit {method.input_type.full_name}:"
            f" {_one_line(str(error))}"
        ) from None
    path = f"/{method.containing_service.full_name}/{method.name}"
    stub = channel.unary_unary(
        path,
        request_serializer=request_class.SerializeToString,
        response_deserializer=response_class.FromString,
    )
    try:
        response = stub(request, timeout=timeout, wait_for_ready=True)
    except grpc.RpcError as error:
        return _failure(error)
    return "OK", json_format.MessageToDict(response, descriptor_pool=reflection.pool)


def _failure(error: grpc.RpcError) -> tuple[str, str]:
    code = error.code() if hasattr(error, "code") else None
    details = error.details() if hasattr(error, "details") else str(error)
    return (code.name if code else "UNKNOWN"), repr(_one_line(details or ""))


def _compact(value: object) -> str:
    return value if isinstance(value, str) else json.dumps(value, separators=(",", ":"))


def _one_line(text: str) -> str:
    return " ".join(text.split())
