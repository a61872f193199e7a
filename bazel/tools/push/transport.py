"""One HTTP exchange with a registry or its token service, as a push against a registry it does
not control needs it:

- The Authorization header goes only to the origin it is for (origins.py), hop by hop:
  redirects are followed here rather than by requests, so none carries it to another origin.
- Every answer is read whole before the exchange returns, with a cap that fits its kind (a
  manifest, a token answer, an error, an answer whose body the push ignores), a piece at a
  time: an answer over its cap is refused without reading on, whatever length it announces or
  however long it streams, so memory stays bounded. Bodies are asked for and read
  uncompressed (nothing is inflated).
- Every exchange, from connecting to the last byte, has a deadline (deadline.py): the request
  deadline (`--request_timeout`, plus time to send its body at a slow link's rate) or, when
  sooner, the push's.
- `.netrc` is never read: requests would otherwise send its login (a `default` entry matches
  every host) to the registry, in place of the registry's own token, and to any origin a
  redirect or upload `Location` names. Proxy and CA-bundle variables (`HTTPS_PROXY`,
  `NO_PROXY`, `REQUESTS_CA_BUNDLE`) still apply.
"""

from __future__ import annotations

import contextlib
import dataclasses
import http.client
import urllib.parse
from collections.abc import Callable, Mapping
from typing import IO

import requests
import urllib3

from bazel.tools.push.deadline import Deadline
from bazel.tools.push.origins import Origin, origin_of

KIB = 1024
MIB = 1024 * KIB


@dataclasses.dataclass(frozen=True)
class Limit:
    """The most a push reads of one kind of answer."""

    kind: str
    size: int

    def __str__(self) -> str:
        return f"{self.size // MIB} MiB" if self.size % MIB == 0 else f"{self.size // KIB} KiB"


# The size every registry must accept for a manifest, and so the most one can be.
MANIFEST = Limit("a manifest", 4 * MIB)
# Registry tokens are a few KiB, a JWT with its certificate chain.
TOKEN = Limit("a token answer", 128 * KIB)
# Registries' JSON errors are a few hundred bytes; a proxy's HTML error page a few KiB.
ERROR = Limit("an error answer", 64 * KIB)
# `{}` from /v2/, empty 201s and 202s.
IGNORED = Limit("an answer the push does not use", 64 * KIB)

CONNECT_TIMEOUT = 10  # seconds
# Bodies sent are at most a chunk (--chunk_size_mib): each request gets the time to send its
# body at this rate on top of --request_timeout, so a slow link is not taken for a stall.
SLOWEST_UPLOAD = 128 * KIB  # bytes per second
MAX_REDIRECTS = 10
REDIRECTS = {301, 302, 303, 307, 308}
_PIECE = 64 * KIB  # read at a time

Body = bytes | Callable[[], IO[bytes]] | None


class BadAnswer(Exception):
    """An answer the push refuses to read (over its cap): not worth another attempt."""


@dataclasses.dataclass(frozen=True)
class Reply:
    """A whole answer: status, headers, body (None: an error answer over its cap, unread) and
    the URL that gave it (after any redirects)."""

    status_code: int
    headers: Mapping[str, str]
    body: bytes | None
    url: str


class Transport:
    """A session, the push's deadline, and how long one request may take."""

    def __init__(self, deadline: Deadline, request_timeout: float) -> None:
        self.deadline = deadline
        self.request_timeout = request_timeout
        self.session = _NoNetrcSession()
        self.session.headers["User-Agent"] = "cloud-run-grpc-kit-push"
        self.session.headers["Accept-Encoding"] = "identity"

    def exchange(
        self,
        method: str,
        url: str,
        limit: Limit,
        authorization: str | None = None,
        origin: Origin | None = None,
        body: Body = None,
        headers: dict[str, str] | None = None,
        params: dict[str, str | list[str]] | None = None,
        follow_redirects: bool = False,
    ) -> Reply:
        """Sends the request (`authorization` only to `origin`), follows redirects when asked
        (GET and HEAD), and returns the answer read within `limit`. Raises BadAnswer,
        deadline.Stalled, deadline.OutOfTime, or what requests raises (TooManyRedirects too)."""
        for _ in range(MAX_REDIRECTS + 1):
            sent = dict(headers or {})
            if authorization and origin is not None and _is_origin(url, origin):
                sent["Authorization"] = authorization
            reply = self._once(method, url, limit, body, sent, params)
            location = reply.headers.get("Location")
            if not (follow_redirects and reply.status_code in REDIRECTS and location):
                return reply
            url, params = urllib.parse.urljoin(url, location), None
        raise requests.TooManyRedirects(f"Exceeded {MAX_REDIRECTS} redirects.")

    def _once(
        self,
        method: str,
        url: str,
        limit: Limit,
        body: Body,
        headers: dict[str, str],
        params: dict[str, str | list[str]] | None,
    ) -> Reply:
        # A file body is opened anew for each attempt; bytes are sent as they are.
        with body() if callable(body) else contextlib.nullcontext(body) as data:
            size = requests.utils.super_len(data) if data is not None else 0
            seconds = self.request_timeout + size / SLOWEST_UPLOAD
            with self.deadline.within(seconds):
                response = self.session.request(
                    method, url, data=data, headers=headers, params=params, stream=True,
                    timeout=(CONNECT_TIMEOUT, seconds), allow_redirects=False,
                )  # fmt: skip
                try:
                    content = _read(response, limit)
                finally:
                    response.close()
        return Reply(response.status_code, response.headers, content, response.url)


class _NoAuth(requests.auth.AuthBase):
    """Leaves a request as it is: as the session's `auth`, it stops requests from looking up
    `.netrc` (which it does only when neither the request nor the session has an auth)."""

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        return request


class _NoNetrcSession(requests.Session):
    """A requests session that never sends `.netrc` credentials.

    `trust_env` stays on, so proxies (`HTTPS_PROXY`, `NO_PROXY`) and `REQUESTS_CA_BUNDLE` keep
    working; but with it requests reads `~/.netrc` (or `$NETRC`) for every request that has no
    auth of its own. The credentials sent are only the ones origins.py allows, so the session's
    `auth` is a no-op. (Requests would read it again on a redirect it follows; exchange()
    follows none, `allow_redirects=False`, and checks each hop itself.)
    """

    def __init__(self) -> None:
        super().__init__()
        self.auth = _NoAuth()


def _is_origin(url: str, origin: Origin) -> bool:
    try:
        return origin_of(url) == origin
    except ValueError:  # not even an http(s) URL: requests refuses it
        return False


def _read(response: requests.Response, limit: Limit) -> bytes | None:
    """The body, at most `limit` of a successful answer (else BadAnswer) and ERROR of any other
    (else None); past the cap, not one piece more is read."""
    if response.request.method == "HEAD" or response.status_code in (204, 304):
        return b""
    success = 200 <= response.status_code < 300
    cap = limit if success else ERROR
    declared = response.headers.get("Content-Length", "")
    if not (declared.isdigit() and int(declared) > cap.size):
        parts: list[bytes] = []
        size = 0
        while size <= cap.size:
            try:
                piece = response.raw.read(min(_PIECE, cap.size + 1 - size), decode_content=False)
            except (urllib3.exceptions.HTTPError, http.client.HTTPException, OSError) as error:
                raise requests.ConnectionError(f"answer broken off: {error}") from None
            if not piece:
                return b"".join(parts)
            parts.append(piece)
            size += len(piece)
    if success:
        raise BadAnswer(f"the answer is over the {cap} limit for {cap.kind}")
    return None
