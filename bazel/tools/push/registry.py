"""The part of the OCI distribution API a push needs, for one repository of one registry.

Blobs are checked with HEAD, mounted from another repository of the same registry when asked
(POST with `mount` and `from`; a registry that answers 202 instead of 201 opened an upload
session, which the upload then uses), and uploaded monolithically (POST, then PUT with the
body) or, past `chunk_size`, in chunks (PATCH each, then PUT with the digest); a chunk that
fails resumes from the offset the registry reports, and one refused with 416 (the registry lost
track of the upload) starts the blob over, as a failed attempt. Transient failures (connection
errors, 408, 429, 5xx) are retried with exponential backoff, honouring `Retry-After`.
Authentication follows the registry's `WWW-Authenticate` challenge: Basic with the credentials
found, or the Bearer token flow (with them, or anonymously).

The registry is trusted with its own origin alone (origins.py): an upload `Location` or a
redirect on another origin gets the request without the Authorization header, and a 401 from
there ends the push naming it. Each request has a deadline and the push has one, and every
answer is read with a cap (transport.py): a stalled request is retried like a broken one, an
answer over its cap is refused, and a push out of time stops (PushTimeout).

Every failure leaves this module as a RegistryError whose message names the registry (or its
token service) and what it answered, including answers that cannot be read (a token that is
not JSON, a malformed `Range` or `Location`, too many redirects): the caller reports one line
per image, never a traceback for something a registry sent.

Authentication (challenges, Bearer tokens, Basic) is in registry_auth.py, the errors and the
descriptions of a registry's answers in registry_errors.py; RegistryError, AuthenticationError
and TransientError are importable from here as before.
"""

from __future__ import annotations

import dataclasses
import re
import time
import urllib.parse
from collections.abc import Callable

import requests

from bazel.tools.push.credentials import Credentials
from bazel.tools.push.deadline import OutOfTime, Stalled
from bazel.tools.push.layout import Blob
from bazel.tools.push.origins import origin_of
from bazel.tools.push.registry_auth import Authenticator
from bazel.tools.push.registry_errors import (
    TRANSIENT_ERRORS,
    AuthenticationError,
    PushTimeout,
    RegistryError,
    TransientError,
    describe,
    error_for,
    printable,
    registry_errors,
)
from bazel.tools.push.transport import IGNORED, MANIFEST, BadAnswer, Body, Limit, Reply, Transport

__all__ = [
    "AuthenticationError",
    "PushTimeout",
    "RegistryError",
    "Repository",
    "RetryPolicy",
    "StoredManifest",
    "TransientError",
]

TRANSIENT_STATUS = {408, 429, 500, 502, 503, 504}
RANGE = re.compile(r"(\d+)-(\d+)")


@dataclasses.dataclass(frozen=True)
class RetryPolicy:
    """How often and how patiently a transient failure is retried."""

    attempts: int = 5
    first_delay: float = 0.5
    max_delay: float = 8.0

    def delay(self, attempt: int, retry_after: str | None = None) -> float:
        """Seconds to wait before retry `attempt` (from 0): the registry's `Retry-After` when
        it sent whole seconds (capped), else exponential backoff."""
        if retry_after and retry_after.isdigit():
            return min(float(retry_after), self.max_delay * 4)
        return min(self.first_delay * 2**attempt, self.max_delay)


@dataclasses.dataclass(frozen=True)
class StoredManifest:
    """A registry's answer to a manifest PUT."""

    digest: str  # Docker-Content-Digest: the digest it computed ("" if it sent none)
    subject: str  # OCI-Subject: set by a registry with the referrers API for an artifact


class Repository:
    """`host/name` on a registry, with the transport (origin, caps, deadlines), retries and
    authentication to reach it."""

    def __init__(
        self,
        host: str,
        name: str,
        credentials: Credentials | None,
        transport: Transport,
        plain_http: bool = False,
        retry: RetryPolicy | None = None,
        log: Callable[[str], None] = lambda message: None,
    ) -> None:
        self.host, self.name = host, name
        self.log = log
        self.credentials = credentials
        self.transport = transport
        self.retry = retry or RetryPolicy()
        self.base = f"{'http' if plain_http else 'https'}://{host}"
        self.origin = origin_of(self.base)
        self._auth = Authenticator(host, name, credentials, transport, self.origin)

    # --- the API -------------------------------------------------------------------------

    def check(self) -> None:
        """GET /v2/: reachable, speaks the API, and lets us in (authenticating if asked)."""
        self._request("GET", "/v2/", ok={200})

    def has_blob(self, digest: str) -> bool:
        """HEAD the blob: whether this repository already has it (nothing to send)."""
        response = self._request("HEAD", f"/v2/{self.name}/blobs/{digest}", ok={200, 404})
        return response.status_code == 200

    def mount_blob(self, digest: str, source: str) -> str | None:
        """Asks the registry to link blob `digest` of repository `source` (same registry) into
        this one, without sending it. None when it did (201); else the upload session the
        registry opened instead (202: it cannot or will not mount), for upload_blob."""
        response = self._request(
            "POST",
            f"/v2/{self.name}/blobs/uploads/",
            params={"mount": digest, "from": source},
            ok={201, 202},
        )
        if response.status_code == 201:
            return None
        return self._location(response)

    def upload_blob(self, blob: Blob, chunk_size: int, session: str | None = None) -> int:
        """Uploads `blob` (in the upload `session` if one is open); returns how many requests
        carried its bytes."""
        if blob.size <= chunk_size:
            return self._upload_monolithic(blob, session)
        return self._upload_chunked(blob, chunk_size, session)

    def put_manifest(self, reference: str, manifest: bytes, media_type: str) -> StoredManifest:
        """PUT the manifest under a digest or tag; returns what the registry said it stored."""
        response = self._request(
            "PUT",
            f"/v2/{self.name}/manifests/{reference}",
            body=manifest,
            headers={"Content-Type": media_type},
            ok={201},
        )
        return StoredManifest(
            response.headers.get("Docker-Content-Digest", ""),
            response.headers.get("OCI-Subject", ""),
        )

    def get_manifest(self, reference: str, accept: str) -> tuple[bytes, str] | None:
        """GET a manifest or index by digest or tag: its bytes and media type, None if absent.
        A body over the MANIFEST limit is an error, read no further than that."""
        path = f"/v2/{self.name}/manifests/{reference}"
        reply = self._request(
            "GET", path, ok={200, 404}, headers={"Accept": accept}, limit=MANIFEST
        )
        if reply.status_code == 404:
            return None
        return reply.body or b"", reply.headers.get("Content-Type", "")

    # --- blob uploads --------------------------------------------------------------------

    def _start_upload(self) -> str:
        """Opens an upload session; returns its URL."""
        response = self._request("POST", f"/v2/{self.name}/blobs/uploads/", ok={202})
        return self._location(response)

    def _upload_monolithic(self, blob: Blob, session: str | None) -> int:
        # A failed PUT leaves its upload session in an unknown state: unless the blob landed,
        # start a new one.
        failures = 0
        while True:
            location, session = session or self._start_upload(), None
            try:
                self._request(
                    "PUT",
                    location,
                    params={"digest": blob.digest},
                    body=blob.open,
                    headers={"Content-Type": "application/octet-stream"},
                    ok={201},
                    retry=False,
                )
                return 1
            except TransientError as error:
                failures += 1
                if failures == self.retry.attempts:
                    raise
                self._backoff(failures - 1, str(error), None)
                if self.has_blob(blob.digest):  # it landed; only the answer was lost
                    return 1

    def _upload_chunked(self, blob: Blob, chunk_size: int, session: str | None) -> int:
        location, offset, requests_made, failures = session or self._start_upload(), 0, 0, 0
        with blob.open() as stream:
            while offset < blob.size:
                stream.seek(offset)
                chunk = stream.read(chunk_size)
                try:
                    response = self._request(
                        "PATCH",
                        location,
                        body=chunk,
                        headers={
                            "Content-Type": "application/octet-stream",
                            "Content-Range": f"{offset}-{offset + len(chunk) - 1}",
                        },
                        ok={202, 416},
                        retry=False,
                    )
                except TransientError as error:
                    failures += 1
                    if failures == self.retry.attempts:
                        raise
                    self._backoff(failures - 1, f"chunk at {offset}: {error}", None)
                    location, offset = self._resume(location)
                    self.log(f"resuming {blob.digest} at byte {offset}")
                    continue
                if response.status_code == 416:
                    # The registry holds other bytes than we think: start over, as a failed
                    # attempt, so a registry that always answers 416 ends the push.
                    failures += 1
                    problem = (
                        f"{self._where('PATCH', location)}: HTTP 416"
                        f"{registry_errors(response)} (the registry lost track of the upload)"
                    )
                    if failures == self.retry.attempts:
                        raise TransientError(
                            f"registry {self.host}: {blob.digest} failed after {failures} "
                            f"attempt(s): {problem}"
                        )
                    self._backoff(failures - 1, f"{problem}; restarting {blob.digest}", None)
                    location, offset = self._start_upload(), 0
                    continue
                location, offset = self._location(response), offset + len(chunk)
                requests_made += 1
        # A retried PUT whose first answer was lost finds the session gone, the blob there.
        response = self._request(
            "PUT", location, params={"digest": blob.digest}, body=b"", ok={201, 404}
        )
        if response.status_code == 404 and not self.has_blob(blob.digest):
            where = self._where("PUT", location)
            raise error_for(self.host, self._credentials_for(location), where, response)
        return requests_made

    def _resume(self, location: str) -> tuple[str, int]:
        """Where an interrupted upload stands: its session and the next offset, or a new one.

        distribution ties an upload's URL to its offset, so after a chunk that landed but whose
        answer was lost, the old URL is refused (400 or 404): the blob starts over.
        """
        response = self._request("GET", location, ok={204, 400, 404})
        if response.status_code != 204:
            return self._start_upload(), 0
        # Range is inclusive, but distribution answers "0-0" for an empty upload too: read it
        # as empty; if one byte was really there, the next PATCH gets 416 and starts over.
        answered = response.headers.get("Range", "0-0")
        match = RANGE.fullmatch(answered.strip())
        if not match:
            raise RegistryError(
                f"registry {self.host}: {self._where('GET', location)} answered Range "
                f"'{printable(answered)}', not FIRST-LAST"
            )
        last = int(match.group(2))
        return self._location(response), last + 1 if last else 0

    def _location(self, response: Reply) -> str:
        """The absolute URL of the upload session the registry's `Location` names (on another
        origin, it gets the upload without our credentials)."""
        if "Location" not in response.headers:
            raise RegistryError(f"registry {self.host} sent no Location for an upload")
        location = response.headers["Location"]
        try:
            url = urllib.parse.urljoin(self.base + "/", location)
            origin_of(url)
        except ValueError:
            url = ""
        if not url:
            raise RegistryError(
                f"registry {self.host} sent an upload Location that is not a URL: {location!r}"
            )
        return url

    # --- requests and retries (authentication: registry_auth.py) ------------------------

    def _request(
        self,
        method: str,
        path_or_url: str,
        ok: set[int],
        body: Body = None,
        headers: dict[str, str] | None = None,
        params: dict[str, str] | None = None,
        retry: bool = True,
        limit: Limit = IGNORED,
    ) -> Reply:
        """One request, retried while the failure is transient (a stalled one too),
        authenticating on a 401 from the registry's origin; returns the answer if its status is
        in `ok`, raises RegistryError otherwise (PushTimeout once the push is out of time)."""
        url = path_or_url if "://" in path_or_url else self.base + path_or_url
        where = self._where(method, url)
        attempts = self.retry.attempts if retry else 1
        authenticated_once = False
        attempt = 0
        while True:
            try:
                response = self.transport.exchange(
                    method, url, limit, self._auth.authorization, self.origin, body, headers,
                    params, follow_redirects=method in {"GET", "HEAD"},
                )  # fmt: skip
            except Stalled as error:
                problem, retry_after = str(error), None
            except TRANSIENT_ERRORS as error:
                problem, retry_after = describe(error), None
            except OutOfTime as error:
                raise PushTimeout(f"registry {self.host}: {where}: {error}") from None
            except BadAnswer as error:
                raise RegistryError(f"registry {self.host}: {where}: {error}") from None
            except requests.RequestException as error:  # redirects, bad headers or URL...
                raise RegistryError(f"registry {self.host}: {where}: {describe(error)}") from None
            else:
                answered = self._where(method, response.url)
                foreign = origin_of(response.url) != self.origin
                if response.status_code == 401 and foreign:
                    raise AuthenticationError(
                        f"registry {self.host}: {answered}: HTTP 401 from another origin than "
                        f"the registry's; the push sends credentials to {self.origin} alone"
                    )
                if response.status_code == 401 and not authenticated_once:
                    self._auth.authenticate(response)
                    authenticated_once = True
                    continue
                if response.status_code in ok:
                    return response
                if response.status_code not in TRANSIENT_STATUS:
                    credentials = self._credentials_for(response.url)
                    raise error_for(self.host, credentials, answered, response)
                problem = f"HTTP {response.status_code}{registry_errors(response)}"
                retry_after = response.headers.get("Retry-After")
            attempt += 1
            if attempt >= attempts:
                raise TransientError(
                    f"registry {self.host}: {where} failed after {attempt} attempt(s): {problem}"
                )
            self._backoff(attempt - 1, f"{where}: {problem}", retry_after)

    def _where(self, method: str, url: str) -> str:
        """`METHOD path` for messages, `METHOD path at ORIGIN` off the registry's origin; never
        the query, which may hold an upload's state or a storage service's signature."""
        path = printable(urllib.parse.urlsplit(url).path)
        origin = origin_of(url)
        return f"{method} {path}" if origin == self.origin else f"{method} {path} at {origin}"

    def _credentials_for(self, url: str) -> Credentials | None:
        """The credentials a request to `url` carried: ours on the registry's origin, none
        elsewhere."""
        return self.credentials if origin_of(url) == self.origin else None

    def _backoff(self, attempt: int, problem: str, retry_after: str | None) -> None:
        """Says why, then waits before the next attempt; a wait the push's deadline would cut
        short ends the push now."""
        delay = self.retry.delay(attempt, retry_after)
        if delay >= self.transport.deadline.remaining():
            raise PushTimeout(
                f"registry {self.host}: {problem}; "
                f"{self.transport.deadline.expired()} for another attempt"
            )
        self.log(f"retrying in {delay:.1f} s ({problem})")
        time.sleep(delay)
