"""How the client shows what a server sends: every message as it arrives (streams too), as
protobuf text or, with --json, one JSON object a line, and never a control character of the
server's raw. A service's own subcommands may show more (route guide's points in degrees) with a
Printer of their own (commands.add_command's `printer`)."""

from __future__ import annotations

import json

from google.protobuf import json_format, text_format
from google.protobuf.message import Message

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
    """Each message on one line. A subclass adds to it through as_json() and comment()."""

    def __init__(self, as_json: bool) -> None:
        self._as_json = as_json

    def __call__(self, message: Message) -> None:
        if self._as_json:
            print(json.dumps(self.as_json(message), sort_keys=True), flush=True)
        else:
            text = printable(text_format.MessageToString(message, as_one_line=True))
            print(text + self.comment(message), flush=True)

    def as_json(self, message: Message) -> dict:
        """The message as protobuf's JSON mapping makes it."""
        return json_format.MessageToDict(message)

    def comment(self, message: Message) -> str:
        """Text after the message's text format line: a comment (` # ...`), so the line stays
        valid text format, or nothing."""
        return ""
