"""`-H 'name: value'`: metadata for `client call`, `list` and `describe`, checked before any call.

gRPC metadata keys are 0-9 a-z - _ . and HTTP/2 header names are case-insensitive, so
`X-Trace: 1` is sent as `x-trace`. Keys that start with `grpc-` are gRPC's own. A key ending in
`-bin` carries bytes, written in base64 as grpcurl takes them (standard or URL-safe alphabet,
padding optional); other values must be printable ASCII, as gRPC requires. An error never shows
a value (headers carry tokens), nor a name that did not parse (it may be a value typed as one).
"""

from __future__ import annotations

import argparse
import base64
import binascii
import re

Metadatum = tuple[str, str | bytes]

_KEY_CHARACTERS = re.compile(r"[0-9a-z_.-]")
_PRINTABLE_ASCII = re.compile(r"[\x20-\x7e]*")
RESERVED_PREFIX = "grpc-"
BINARY_SUFFIX = "-bin"


def parse(text: str) -> Metadatum:
    """`name: value` -> (key, value); argparse.ArgumentTypeError, naming no value, if bad."""
    name, colon, value = text.partition(":")
    if not colon:
        raise argparse.ArgumentTypeError("a header is 'name: value'; this one has no colon")
    key = name.strip().lower()
    if not key:
        raise argparse.ArgumentTypeError(
            "a header needs a name before its colon (a pseudo-header such as :authority is not"
            " metadata: see --authority)"
        )
    for position, character in enumerate(key, 1):
        if not _KEY_CHARACTERS.fullmatch(character):
            raise argparse.ArgumentTypeError(
                f"a header name may hold only 0-9 a-z - _ . (case is ignored); character"
                f" {position} of this one is {character!r}"
            )
    if key.startswith(RESERVED_PREFIX):
        raise argparse.ArgumentTypeError(
            f"header {key}: names starting {RESERVED_PREFIX} are gRPC's own (for a deadline,"
            " see --timeout)"
        )
    value = value.strip()
    if key.endswith(BINARY_SUFFIX):
        return key, _base64(key, value)
    if not _PRINTABLE_ASCII.fullmatch(value):
        raise argparse.ArgumentTypeError(
            f"header {key}: a value must be printable ASCII (for bytes, name the header"
            f" ...{BINARY_SUFFIX} and give the value in base64)"
        )
    return key, value


def _base64(key: str, value: str) -> bytes:
    padded = value + "=" * (-len(value) % 4)
    for alphabet in (None, b"-_"):
        try:
            return base64.b64decode(padded, altchars=alphabet, validate=True)
        except binascii.Error:
            continue
    raise argparse.ArgumentTypeError(
        f"header {key}: the value of a {BINARY_SUFFIX} header is bytes in base64, and this one"
        " is not base64"
    )
