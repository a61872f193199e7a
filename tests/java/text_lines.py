"""The clients' output read back as messages. The Java client prints protobuf-java's text
format and the Python client Python's: the words differ (which characters each escapes, and
how), the messages must not. So the tests parse each line with `text_format.Parse` and compare
messages, and the degrees comment at the end of a line (docs/client.md) as text."""

from __future__ import annotations

import re
from typing import NamedTuple

from google.protobuf import text_format
from google.protobuf.message import Message

# The comment the clients append for a message's points: `# location 37.0,-122.95`.
_DEGREES = re.compile(r" # (\w+ -?\d+\.\d+,-?\d+\.\d+(?: \w+ -?\d+\.\d+,-?\d+\.\d+)*)$")


class Line(NamedTuple):
    """One line of a client's output: its message, and its degrees comment, if any."""

    message: Message
    degrees: str | None


def parse_lines(out: str, message_type: type[Message]) -> list[Line]:
    """Each line of `out` parsed into a `message_type`. Lines end with "\\n", the last one too;
    not str.splitlines(): protobuf-java leaves "\\x1c" or "\\u2028" in a string as they are."""
    if out and not out.endswith("\n"):
        raise ValueError(f"the output ends in the middle of a line: {out!r}")
    lines = []
    for text in out.split("\n")[:-1]:
        message = message_type()
        text_format.Parse(text, message)
        degrees = _DEGREES.search(text)
        lines.append(Line(message, degrees[1] if degrees else None))
    return lines


def without(lines: list[Line], fields: tuple[str, ...]) -> list[Line]:
    """The lines with each of `fields` (dotted paths, such as "pong.index") cleared."""
    cleared = []
    for line in lines:
        message = type(line.message)()
        message.CopyFrom(line.message)
        for field in fields:
            *parents, name = field.split(".")
            holder = message
            for parent in parents:
                holder = getattr(holder, parent)
            holder.ClearField(name)
        cleared.append(Line(message, line.degrees))
    return cleared
