"""The errors a push to a registry ends with, and the one-line descriptions of what a registry
answered: shared by registry.py (blobs, manifests, retries) and registry_auth.py (challenges,
tokens), each of which reports through them. Messages name registries, paths and statuses,
never a credential or a header's value. Whatever text a registry supplies (an error's message,
a header, a Location's path) reaches them through printable(), so it stays on its one line.
"""

from __future__ import annotations

import json
import re
import unicodedata

import requests

from bazel.tools.push.credentials import Credentials
from bazel.tools.push.transport import ERROR, Reply

# The most of one piece of registry-supplied text a message shows: a registry's error message
# is a sentence; more is noise, or an attempt to bury the line that says what failed.
PRINTABLE_LIMIT = 500
_ESCAPES = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}

TRANSIENT_ERRORS = (
    requests.ConnectionError,
    requests.Timeout,
    requests.exceptions.ChunkedEncodingError,
)


class RegistryError(RuntimeError):
    """The push cannot go on; the message names the registry and what it said."""


class AuthenticationError(RegistryError):
    """The registry (or its token service) refused us."""


class TransientError(RegistryError):
    """Worth retrying: the connection broke or the registry said so (429, 5xx)."""


class PushTimeout(RegistryError):
    """The push's --timeout ran out: nothing more is sent, for any image."""


def printable(text: str, limit: int = PRINTABLE_LIMIT) -> str:
    """`text`, as a registry sent it, made safe for one line of the push's output.

    Every control or other non-printing character (Unicode category C: newlines, ESC, the
    bidirectional overrides, unassigned code points) is shown escaped (`\\n`, `\\x1b`,
    `\\u202e`), so a registry cannot forge lines of the output (`pushed ...@sha256:...`) or
    drive the terminal; and the text is cut after `limit` characters, ending `...`.
    """
    pieces: list[str] = []
    size = 0
    for char in text:
        piece = _escaped(char) if _breaks_the_line(char) else char
        if size + len(piece) > limit:
            return "".join(pieces) + "..."
        pieces.append(piece)
        size += len(piece)
    return "".join(pieces)


def _breaks_the_line(char: str) -> bool:
    """Non-printing (category C), or a line or paragraph separator (U+2028, U+2029: category Z,
    but lines to str.splitlines and to some terminals and log viewers)."""
    return unicodedata.category(char)[0] == "C" or char in "\u2028\u2029"


def _escaped(char: str) -> str:
    """A non-printing character as Python writes it in a string literal."""
    code = ord(char)
    if char in _ESCAPES:
        return _ESCAPES[char]
    if code < 0x100:
        return f"\\x{code:02x}"
    return f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"


def error_for(
    host: str, credentials: Credentials | None, where: str, reply: Reply
) -> RegistryError:
    """The error for an answer neither expected nor worth retrying, to `where` (`METHOD path`)."""
    if reply.status_code == 401:
        return rejected(host, credentials, reply)
    if reply.status_code == 403:
        source = credentials.source if credentials else "anonymous access"
        return AuthenticationError(
            f"registry {host} denied {where} to {source}: HTTP 403{registry_errors(reply)}"
        )
    return RegistryError(
        f"registry {host}: {where}: HTTP {reply.status_code}{registry_errors(reply)}"
    )


def rejected(
    host: str,
    credentials: Credentials | None,
    reply: Reply,
    token_service: str | None = None,
) -> AuthenticationError:
    """Why the registry (or its token service) refused the credentials we presented."""
    who = (
        f"token service {token_service} of registry {host}" if token_service else f"registry {host}"
    )
    source = credentials.source if credentials else "no credentials (anonymous)"
    return AuthenticationError(
        f"{who} rejected the credentials from {source}: "
        f"HTTP {reply.status_code}{registry_errors(reply)}"
    )


def registry_errors(reply: Reply) -> str:
    """`: CODE message` from the registry's JSON error body, when it sent one; a note when the
    body was over its cap and left unread."""
    if reply.body is None:
        return f" (its body is over the {ERROR} limit for {ERROR.kind}, not read)"
    try:
        answer = json.loads(reply.body)
    except (ValueError, RecursionError):
        return ""
    errors = answer.get("errors") if isinstance(answer, dict) else None
    if not isinstance(errors, list):
        return ""
    details = "; ".join(
        f"{e.get('code', '')} {e.get('message', '')}".strip() for e in errors if isinstance(e, dict)
    )
    return f": {printable(details)}" if details else ""


# A URL's query as requests and urllib3 name it in their errors (`with url: /path?QUERY (Caused
# by ...)`): prepared URLs are percent-encoded, so the query ends at the first space.
_QUERY = re.compile(r"\?\S*")


def describe(error: Exception) -> str:
    """`ExceptionType: first line of its message`, for one-line errors; without any URL's
    query, which may hold an upload's state or a storage service's signature."""
    lines = str(error).splitlines()
    return f"{type(error).__name__}: {printable(_QUERY.sub('', lines[0])) if lines else ''}"
