"""Bytes a client sends that grpcio cannot read as UTF-8: kept out of the logs.

grpcio's Cython layer reads every header value that is not `-bin` as UTF-8. When that fails it
logs the whole value (`Invalid encoding on b'...'`, an ERROR with a traceback, once for every
time the call's metadata is read) and goes on with the value read as Latin-1. A header value is
the client's, and may be a credential: none may reach a log. The value read as Latin-1 is
harmless (the tokens and trace headers it could be do not parse, and are refused or ignored).

A request path that is not UTF-8 is worse: grpc.aio's serving loop raises on it and stops
accepting calls (server.py serves again on a new server). grpcio logs that with the exception,
and asyncio later logs the task that re-raised it, with the path's bytes in its repr.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

# The logger of grpcio's Cython layer (`_LOGGER` in grpc/_cython/cygrpc).
GRPC_CYTHON_LOGGER = "grpc._cython.cygrpc"
_INVALID_ENCODING = "Invalid encoding on %s"

logger = logging.getLogger("server")


class _HideUndecodable(logging.Filter):
    """Drops grpcio's lines that carry bytes a client sent, or a traceback caused by them."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.msg == _INVALID_ENCODING:
            return False  # the value, with a traceback; the call goes on (see above)
        # grpc.aio's serving loop crashed: it logs the exception itself as the message.
        return not isinstance(record.msg, UnicodeError)


_FILTER = _HideUndecodable()


def hide_from_logs() -> None:
    """Installs the filter on grpcio's logger (once, however often it is called)."""
    logging.getLogger(GRPC_CYTHON_LOGGER).addFilter(_FILTER)


def loop_exception_handler(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
    """An event loop's handler of exceptions no task retrieved: a decode error (from bytes a
    client sent) is one line without the task's repr or a traceback; anything else is a bug,
    and goes to asyncio's default handler with its traceback."""
    error = context.get("exception")
    if isinstance(error, UnicodeError):
        # str() of a decode error names the codec and one byte's position, not the bytes.
        logger.warning("%s: %s: %s", context.get("message"), type(error).__name__, error)
        return
    loop.default_exception_handler(context)
