"""Google's token-signing certificates for `--auth_mode=verify`, fetched as their Cache-Control
says, and never a reason for calls to queue.

One fetch at a time serves every caller waiting for it. Once certificates have been fetched,
an expired copy stays in use for up to `STALE_SECONDS` while a fresh one is fetched in the
background: Google publishes each key well before it signs with it, and an unreachable
certificate URL must not turn every call into a timeout. With no usable copy, callers wait for
the one fetch, and get `CertsUnavailable` (UNAVAILABLE for the client) if it fails; a failed
fetch is not retried for `RETRY_SECONDS`, so an outage is not a fetch per call.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import time

GOOGLE_CERTS_URL = "https://www.googleapis.com/oauth2/v1/certs"
DEFAULT_MAX_AGE_SECONDS = 300
FETCH_TIMEOUT_SECONDS = 5.0
STALE_SECONDS = 6 * 3600
RETRY_SECONDS = 5.0

logger = logging.getLogger("auth")


class CertsUnavailable(Exception):
    """No certificates to verify tokens with."""


class GoogleCerts:
    def __init__(self, url: str = GOOGLE_CERTS_URL) -> None:
        self._url = url
        self._certs: dict[str, str] = {}
        self._fresh_until = 0.0  # monotonic seconds; past it, fetch again
        self._usable_until = 0.0  # past it, the copy is too old to verify with
        self._next_attempt = 0.0  # no fetch before this, after a failed one
        self._error = "not fetched yet"
        self._fetching: asyncio.Task[None] | None = None

    async def get(self) -> dict[str, str]:
        now = time.monotonic()
        if now < self._fresh_until:
            return self._certs
        if self._fetching is None and now >= self._next_attempt:
            self._fetching = asyncio.create_task(self._refresh())
        if now < self._usable_until:
            return self._certs  # the fetch, if any, runs in the background
        if self._fetching is not None:
            # Shielded: a caller that gives up (cancel, deadline) must not cancel the others'.
            await asyncio.shield(self._fetching)
        if time.monotonic() >= self._usable_until:
            raise CertsUnavailable(f"no Google certificates to verify tokens: {self._error}")
        return self._certs

    async def _refresh(self) -> None:
        try:
            certs, max_age = await asyncio.to_thread(self._fetch)
        except Exception as error:  # any failure of the fetch (HTTP, JSON, socket) is an outage
            self._error = f"{self._url}: {error}"
            self._next_attempt = time.monotonic() + RETRY_SECONDS
            logger.warning("cannot fetch Google certificates: %s", self._error)
        else:
            now = time.monotonic()
            self._certs = certs
            self._fresh_until = now + max_age
            self._usable_until = now + max_age + STALE_SECONDS
        finally:
            self._fetching = None

    def _fetch(self) -> tuple[dict[str, str], float]:
        # Here, not at the top: only --auth_mode=verify fetches, and urllib.request (with
        # http.client and email under it) costs every other server's start ~10 ms.
        import urllib.request

        with urllib.request.urlopen(self._url, timeout=FETCH_TIMEOUT_SECONDS) as response:
            certs = json.load(response)
            cache_control = response.headers.get("Cache-Control", "")
        if not isinstance(certs, dict) or not all(isinstance(v, str) for v in certs.values()):
            raise ValueError("not a JSON object of PEM certificates")
        match = re.search(r"max-age=(\d+)", cache_control)
        return certs, float(match[1]) if match else DEFAULT_MAX_AGE_SECONDS
