"""Route guide's client: the kit's client (python/client: health, call, list, describe) with
route guide's own subcommands, on the generated stubs, its points typed and shown in degrees
(points.py). `bazel run //python/services/route_guide:client -- get-feature 37,-122.95
--server localhost:8081 --insecure`."""

from __future__ import annotations

import argparse
import random
import sys

import grpc
from routeguide.v1 import route_guide_pb2, route_guide_pb2_grpc

from python.client import main
from python.client.commands import add_command, call_options
from python.services.route_guide import points
from python.services.route_guide.feature_db import FeatureDb

POINT_HELP = (
    "LAT,LON in degrees (-33.8688,151.2093; up to 7 decimals) or in degrees x 10^7 integers"
    " (-338688000,1512093000); integers all within +-180 are refused as ambiguous"
)


def get_feature(channel: grpc.Channel, args: argparse.Namespace, show: points.Printer) -> None:
    stub = route_guide_pb2_grpc.RouteGuideStub(channel)
    show(stub.GetFeature(args.point, **call_options(args)))


def list_features(channel: grpc.Channel, args: argparse.Namespace, show: points.Printer) -> None:
    stub = route_guide_pb2_grpc.RouteGuideStub(channel)
    rectangle = route_guide_pb2.Rectangle(lo=args.lo, hi=args.hi)
    for feature in stub.ListFeatures(rectangle, **call_options(args)):
        show(feature)


def record_route(channel: grpc.Channel, args: argparse.Namespace, show: points.Printer) -> None:
    stub = route_guide_pb2_grpc.RouteGuideStub(channel)
    route = args.points or _random_route(args.random_points)
    show(stub.RecordRoute(iter(route), **call_options(args)))


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


def chat(channel: grpc.Channel, args: argparse.Namespace, show: points.Printer) -> None:
    """Notes from the command line (`LAT,LON:message`), or one per line of stdin.

    Every note is parsed before the call starts: a bad one is then a usage error (exit 2), not
    a stream the client breaks off halfway, which gRPC reports only as UNKNOWN."""
    stub = route_guide_pb2_grpc.RouteGuideStub(channel)
    notes = args.notes or [_note(line.strip()) for line in sys.stdin if line.strip()]
    for note in stub.RouteChat(iter(notes), **call_options(args)):
        show(note)


def add_subcommands(
    subparsers: argparse._SubParsersAction, parents: list[argparse.ArgumentParser]
) -> None:
    """RouteGuide's four methods, each also taking the flags of `parents` (the global flags)."""

    def command(name: str, function, help_text: str) -> argparse.ArgumentParser:
        return add_command(subparsers, parents, name, function, help_text, printer=points.Printer)

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


if __name__ == "__main__":
    sys.exit(main.main(sys.argv[1:], [add_subcommands]))
