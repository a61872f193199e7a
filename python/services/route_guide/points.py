"""Points as people type them, and as route guide's client shows them.

RouteGuide counts in degrees x 10^7 (E7) integers; people type degrees (`-33.8688,151.2093`).
The client takes both, and this is the one rule that tells them apart (its Java twin,
java/Points.java, applies the same rule with the same messages; docs/client.md states it):

- a decimal point in either number: degrees, at most 7 decimals (RouteGuide's resolution);
- integers only, one of them beyond +-180, which no degree is: E7, as the client always took;
- integers only, all within +-180 (`40,-74`): refused. A person typing that means degrees, a
  script written for the E7 client meant a spot within 2 m of 0,0; guessing would send one of
  them somewhere else without a word, so the message says how to write degrees. `0,0` is the
  same either way and is taken.

Out of range (latitude beyond +-90 degrees, longitude beyond +-180) is refused here rather than
by the server, as bad input (exit 2) before any call.
"""

from __future__ import annotations

import argparse
import re
from decimal import Decimal

from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message
from routeguide.v1 import route_guide_pb2

from python.client import printing

E7 = 10**7
DECIMALS = 7
# The largest integer that can be a degree: beyond it, an integer can only be E7.
MAX_DEGREES = 180
LIMITS_DEGREES = {"latitude": 90, "longitude": 180}
# ASCII digits only: int() and Decimal() would also take "1_000" and other scripts' digits.
NUMBER = re.compile(r"[+-]?[0-9]+(\.[0-9]+)?", re.ASCII)
EXAMPLE = "in degrees (-33.8688,151.2093) or degrees x 10^7 (-338688000,1512093000)"


def looks_like_point(text: str) -> bool:
    """Two numbers and a comma; whether they make a point is parse()'s to say."""
    numbers = text.split(",")
    return len(numbers) == 2 and all(NUMBER.fullmatch(number.strip()) for number in numbers)


def parse(text: str) -> route_guide_pb2.Point:
    """`LAT,LON` in degrees or E7 integers, by the rule above; bad input raises
    ArgumentTypeError with one line that quotes it."""
    if not looks_like_point(text):
        raise argparse.ArgumentTypeError(f"a point is LAT,LON {EXAMPLE}, got {text!r}")
    numbers = [part.strip() for part in text.split(",")]
    if any("." in number for number in numbers):
        for number in numbers:
            if len(number.partition(".")[2]) > DECIMALS:
                raise argparse.ArgumentTypeError(
                    f"{text!r}: {number} has more than {DECIMALS} decimals"
                    " (RouteGuide counts 10^-7 degrees)"
                )
        values = [Decimal(number) * E7 for number in numbers]
        unit, scale = "degrees", 1
    else:
        values = [Decimal(number) for number in numbers]
        if all(abs(value) <= MAX_DEGREES for value in values) and any(values):
            as_degrees = ",".join(f"{number}.0" for number in numbers)
            raise argparse.ArgumentTypeError(
                f"{text!r} could be degrees or degrees x 10^7: for degrees write {as_degrees}"
            )
        unit, scale = "degrees x 10^7", E7
    for (axis, limit), number, value in zip(LIMITS_DEGREES.items(), numbers, values, strict=True):
        if abs(value) > limit * E7:
            raise argparse.ArgumentTypeError(
                f"{text!r}: {axis} {number} is outside -{limit * scale}..{limit * scale} {unit}"
            )
    latitude, longitude = (int(value) for value in values)
    return route_guide_pb2.Point(latitude=latitude, longitude=longitude)


def degrees(e7: int) -> str:
    """E7 as decimal degrees, exactly: always a decimal point (so the client reads it back as
    degrees), no trailing zeros after the first decimal (37.0, -122.95, 0.0000001)."""
    whole, fraction = divmod(abs(e7), E7)
    decimals = f"{fraction:0{DECIMALS}d}".rstrip("0") or "0"
    return f"{'-' if e7 < 0 else ''}{whole}.{decimals}"


def point_fields(message: Message) -> list[tuple[FieldDescriptor, route_guide_pb2.Point]]:
    """The message's Point fields that are set, by field number.

    Only the message's own fields: every RouteGuide message the client prints (Feature,
    RouteNote) has its point there."""
    point_type = route_guide_pb2.Point.DESCRIPTOR.full_name
    return [
        (field, value)
        for field, value in message.ListFields()
        if field.message_type is not None and field.message_type.full_name == point_type
    ]


def text_comment(message: Message) -> str:
    """A protobuf text format comment with each point in degrees (`# location 37.0,-122.95`),
    or nothing: the line stays valid text format."""
    shown = [
        f"{field.name} {degrees(point.latitude)},{degrees(point.longitude)}"
        for field, point in point_fields(message)
    ]
    return f" # {' '.join(shown)}" if shown else ""


def add_json_degrees(message: Message, as_json: dict) -> dict:
    """Each point's JSON object also gets latitudeDegrees and longitudeDegrees (numbers)."""
    for field, point in point_fields(message):
        as_json[field.json_name]["latitudeDegrees"] = float(degrees(point.latitude))
        as_json[field.json_name]["longitudeDegrees"] = float(degrees(point.longitude))
    return as_json


class Printer(printing.Printer):
    """The kit's client's Printer, with each point also in degrees."""

    def as_json(self, message: Message) -> dict:
        return add_json_degrees(message, super().as_json(message))

    def comment(self, message: Message) -> str:
        return text_comment(message)
