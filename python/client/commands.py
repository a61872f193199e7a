"""One function per subcommand of the client: each makes its calls on a shared channel and
prints every message as it arrives (streams too), as protobuf text or, with --json, one JSON
object a line."""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from collections.abc import Callable

import grpc
from google.protobuf import json_format, text_format
from google.protobuf.message import Message
from grpc_health.v1 import health_pb2, health_pb2_grpc
from ping.v1 import ping_pb2, ping_pb2_grpc
from routeguide.v1 import route_guide_pb2, route_guide_pb2_grpc

from python.client import points
from python.services.route_guide.feature_db import FeatureDb

# Every control character (C0, DEL and C1; U+009B is CSI to some terminals) as octal escapes of
# its UTF-8 bytes, as text_format writes the C0 ones: no server's string (a message, a service
# name, an error's details) drives the terminal. JSON needs nothing: json.dumps escapes every
# non-ASCII character.
CONTROL_ESCAPES = {
    c: "".join(f"\\{b:03o}" for b in chr(c).encode())
    for c in (*range(0x20), 0x7F, *range(0x80, 0xA0))
}


def printable(text: str) -> str:
    """`text` with its control characters escaped (CONTROL_ESCAPES)."""
    return text.translate(CONTROL_ESCAPES)


class Printer:
    """Each message on one line, its points also in degrees (see points.py)."""

    def __init__(self, as_json: bool) -> None:
        self._as_json = as_json

    def __call__(self, message: Message) -> None:
        if self._as_json:
            as_json = points.add_json_degrees(message, json_format.MessageToDict(message))
            print(json.dumps(as_json, sort_keys=True), flush=True)
        else:
            text = printable(text_format.MessageToString(message, as_one_line=True))
            print(text + points.text_comment(message), flush=True)


Command = Callable[[grpc.Channel, argparse.Namespace, Printer], None]

POINT_HELP = (
    "LAT,LON in degrees (-33.8688,151.2093; up to 7 decimals) or in degrees x 10^7 integers"
    " (-338688000,1512093000); integers all within +-180 are refused as ambiguous"
)


def _call_options(args: argparse.Namespace) -> dict:
    return {
        "timeout": args.timeout,
        "wait_for_ready": args.wait_for_ready,
        "metadata": args.headers or None,
    }


def ping(channel: grpc.Channel, args: argparse.Namespace, show: Printer) -> None:
    stub = ping_pb2_grpc.PingServiceStub(channel)
    show(stub.Send(ping_pb2.Request(message=args.message), **_call_options(args)))


def relay(channel: grpc.Channel, args: argparse.Namespace, show: Printer) -> None:
    stub = ping_pb2_grpc.PingServiceStub(channel)
    show(stub.SendUpstream(ping_pb2.Request(message=args.message), **_call_options(args)))


def get_feature(channel: grpc.Channel, args: argparse.Namespace, show: Printer) -> None:
    stub = route_guide_pb2_grpc.RouteGuideStub(channel)
    show(stub.GetFeature(args.point, **_call_options(args)))


def list_features(channel: grpc.Channel, args: argparse.Namespace, show: Printer) -> None:
    stub = route_guide_pb2_grpc.RouteGuideStub(channel)
    rectangle = route_guide_pb2.Rectangle(lo=args.lo, hi=args.hi)
    for feature in stub.ListFeatures(rectangle, **_call_options(args)):
        show(feature)


def record_route(channel: grpc.Channel, args: argparse.Namespace, show: Printer) -> None:
    stub = route_guide_pb2_grpc.RouteGuideStub(channel)
    route = args.points or _random_route(args.random_points)
    show(stub.RecordRoute(iter(route), **_call_options(args)))


def _random_route(count: int) -> list[route_guide_pb2.Point]:
    """A walk over known features, so the summary counts some."""
    known = list(FeatureDb.load().within_all())
    return [random.choice(known).location for _ in range(count)]


def _note(text: str) -> route_guide_pb2.RouteNote:
    """`LAT,LON:message`. A note that is not shaped like one says so; a point that is shaped
    like one but wrong (out of range, ambiguous) says what is wrong with it."""
    where, colon, message = text.partition(":")
    if colon and points.looks_like_point(where):
        return route_guide_pb2.RouteNote(location=points.parse(where), message=message)
    raise argparse.ArgumentTypeError(f"a note is LAT,LON:message, got {text!r}")


def chat(channel: grpc.Channel, args: argparse.Namespace, show: Printer) -> None:
    """Notes from the command line (`LAT,LON:message`), or one per line of stdin.

    Every note is parsed before the call starts: a bad one is then a usage error (exit 2), not
    a stream the client breaks off halfway, which gRPC reports only as UNKNOWN."""
    stub = route_guide_pb2_grpc.RouteGuideStub(channel)
    notes = args.notes or [_note(line.strip()) for line in sys.stdin if line.strip()]
    for note in stub.RouteChat(iter(notes), **_call_options(args)):
        show(note)


def health(channel: grpc.Channel, args: argparse.Namespace, show: Printer) -> None:
    stub = health_pb2_grpc.HealthStub(channel)
    request = health_pb2.HealthCheckRequest(service=args.service)
    if not args.watch:
        show(stub.Check(request, **_call_options(args)))
        return
    started = time.monotonic()
    watch_timeout = None if args.watch_seconds is None else args.watch_seconds
    try:
        watch_options = {**_call_options(args), "timeout": watch_timeout}
        for status in stub.Watch(request, **watch_options):
            show(status)
    except grpc.RpcError as error:
        # Watching for a while and then stopping is success, not a failure.
        ran_out = error.code() is grpc.StatusCode.DEADLINE_EXCEEDED
        if not (ran_out and time.monotonic() - started >= (watch_timeout or 0)):
            raise


def add_subcommands(
    subparsers: argparse._SubParsersAction, parents: list[argparse.ArgumentParser]
) -> None:
    """Every subcommand, each also taking the flags of `parents` (the global flags)."""

    def command(name: str, function: Command, help_text: str) -> argparse.ArgumentParser:
        parser = subparsers.add_parser(name, help=help_text, description=help_text, parents=parents)
        parser.set_defaults(command=function)
        return parser

    for name, function, help_text in (
        ("ping", ping, "PingService.Send: the server answers with a pong."),
        ("relay", relay, "PingService.SendUpstream: the server relays to its upstream."),
    ):
        command(name, function, help_text).add_argument("--message", default="ping")
    command("get-feature", get_feature, "RouteGuide.GetFeature at a point.").add_argument(
        "point", type=points.parse, help=POINT_HELP
    )
    listing = command("list-features", list_features, "RouteGuide.ListFeatures (a stream).")
    listing.add_argument("lo", type=points.parse, help="one corner, LAT,LON")
    listing.add_argument("hi", type=points.parse, help="the opposite corner, LAT,LON")
    route = command("record-route", record_route, "RouteGuide.RecordRoute: points in, summary out.")
    route.add_argument("points", nargs="*", type=points.parse, help="LAT,LON ... (default: random)")
    route.add_argument("--random_points", type=int, default=10, help="without points: how many")
    talk = command("chat", chat, "RouteGuide.RouteChat: notes in, earlier notes out.")
    talk.add_argument(
        "notes",
        nargs="*",
        type=_note,
        help="LAT,LON:message ... (default: the lines of stdin, all read and checked before the"
        " call starts)",
    )
    check = command("health", health, "grpc.health.v1.Health: Check, or Watch.")
    check.add_argument("--service", default="", help="service name; empty: the whole server")
    check.add_argument("--watch", action="store_true", help="stream status changes")
    check.add_argument("--watch_seconds", type=float, help="with --watch: stop after this long")
