"""`client call`: any method of any service, of the four kinds, with message classes made from the
descriptors the server sends through reflection, and requests and responses as JSON.

Requests: each JSON argument is one request; without any, stdin gives them, one JSON object a
line (blank lines skipped). A unary or server-streaming method takes exactly one. Arguments, and
stdin for those two kinds, are parsed before the call starts, so a bad one is a usage error
(exit 2) and nothing is sent. A request stream from stdin is parsed line by line as it is sent,
so a long or interactive stream (RouteChat) starts at once; a line that does not parse cancels
the call (the server sees CANCELLED, never a stream that ended early as if complete) and is then
reported as a usage error.

Responses: one JSON object a line (protobuf's JSON mapping: lowerCamelCase names, fields at
their defaults left out, 64-bit integers as strings), printed as each one arrives.
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
from collections.abc import Iterable, Iterator

import grpc
from google.protobuf import descriptor, descriptor_pool, json_format, message_factory
from google.protobuf.message import Message

from python.client import describe
from python.client.server_reflection import CallOptions, Reflection


class _Json:
    """JSON to and from the method's message classes, names resolved in the server's pool (for
    `google.protobuf.Any` fields)."""

    def __init__(self, method: descriptor.MethodDescriptor, pool: descriptor_pool.DescriptorPool):
        self.request_class = message_factory.GetMessageClass(method.input_type)
        self.response_class = message_factory.GetMessageClass(method.output_type)
        self._pool = pool

    def request(self, text: str, where: str) -> Message:
        try:
            return json_format.Parse(text, self.request_class(), descriptor_pool=self._pool)
        except json_format.ParseError as error:
            raise argparse.ArgumentTypeError(f"{where}: {_one_line(str(error))}") from None

    def show(self, response: Message) -> None:
        as_dict = json_format.MessageToDict(response, descriptor_pool=self._pool)
        print(json.dumps(as_dict), flush=True)


def _one_line(text: str) -> str:
    return " ".join(text.split())


class _StdinStream:
    """Requests parsed from stdin as gRPC asks for them. attach() hands over the call, which a
    bad line cancels; `error` then says what was wrong."""

    def __init__(self, convert: _Json) -> None:
        self._convert = convert
        self._call: grpc.Future | None = None
        self._attached = threading.Event()
        self.error: argparse.ArgumentTypeError | None = None

    def attach(self, call: grpc.Future) -> None:
        self._call = call
        self._attached.set()

    def __iter__(self) -> Iterator[Message]:
        for number, line in enumerate(sys.stdin, 1):
            if not line.strip():
                continue
            try:
                request = self._convert.request(line, f"stdin line {number}")
            except argparse.ArgumentTypeError as error:
                self.error = error
                self._attached.wait()  # gRPC may ask for requests before attach()
                assert self._call is not None
                self._call.cancel()
                return
            yield request


def call(channel: grpc.Channel, args: argparse.Namespace, options: CallOptions) -> None:
    reflection = Reflection(channel, options)
    method = reflection.method(args.method)
    convert = _Json(method, reflection.pool)
    path = f"/{method.containing_service.full_name}/{method.name}"
    serializers = {
        "request_serializer": convert.request_class.SerializeToString,
        "response_deserializer": convert.response_class.FromString,
    }
    given = [
        convert.request(text, _where(i, args.requests)) for i, text in enumerate(args.requests)
    ]
    kwargs = options.as_kwargs()
    if not method.client_streaming:
        request = _the_one(given, method) if given else _one_from_stdin(convert, method)
        if method.server_streaming:
            _each(channel.unary_stream(path, **serializers)(request, **kwargs), convert)
        else:
            convert.show(channel.unary_unary(path, **serializers)(request, **kwargs))
        return
    stdin = None
    if given:
        requests: Iterator[Message] = iter(given)
    else:
        _hint_if_typing("requests, one JSON object a line; end with Ctrl-D")
        stdin = _StdinStream(convert)
        requests = iter(stdin)
    try:
        if method.server_streaming:
            responses = channel.stream_stream(path, **serializers)(requests, **kwargs)
            _attach(stdin, responses)
            _each(responses, convert)
        else:
            future = channel.stream_unary(path, **serializers).future(requests, **kwargs)
            _attach(stdin, future)
            convert.show(future.result())
    except (grpc.RpcError, grpc.FutureCancelledError):
        if stdin is not None and stdin.error is not None:
            raise stdin.error from None
        raise


def _where(index: int, given: list[str]) -> str:
    return "the request" if len(given) == 1 else f"request {index + 1}"


def _one_request_only(method: descriptor.MethodDescriptor, got: str) -> argparse.ArgumentTypeError:
    return argparse.ArgumentTypeError(
        f"{method.full_name} is {describe.kind(method)}: it takes one request, as an argument"
        f" ('{{}}' for an empty one) or as one JSON line on stdin; {got}"
    )


def _the_one(given: list[Message], method: descriptor.MethodDescriptor) -> Message:
    if len(given) != 1:
        raise _one_request_only(method, f"got {len(given)} arguments")
    return given[0]


def _one_from_stdin(convert: _Json, method: descriptor.MethodDescriptor) -> Message:
    _hint_if_typing("the request, one JSON object on one line; end with Ctrl-D")
    lines = [(number, line) for number, line in enumerate(sys.stdin, 1) if line.strip()]
    if len(lines) != 1:
        raise _one_request_only(method, f"stdin had {len(lines)} lines")
    ((number, line),) = lines
    return convert.request(line, f"stdin line {number}")


def _hint_if_typing(what: str) -> None:
    """A person at a terminal who gave no request sees why nothing happens."""
    if sys.stdin.isatty():
        print(f"client: reading {what}", file=sys.stderr)


def _attach(stdin: _StdinStream | None, call: grpc.Future) -> None:
    if stdin is not None:
        stdin.attach(call)


def _each(responses: Iterable[Message], convert: _Json) -> None:
    for response in responses:
        convert.show(response)
