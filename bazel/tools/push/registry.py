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

Every failure leaves this module as a RegistryError whose message names the registry (or its
token service) and what it answered, including answers that cannot be read (a token that is
not JSON, a malformed `Range` or `Location`, too many redirects): the caller reports one line
per image, never a traceback for something a registry sent.
"""

from __future__ import annotations

import contextlib
import dataclasses
import re
import time
import urllib.parse
from collections.abc import Callable
from typing import IO

import requests

from bazel.tools.push.credentials import Credentials
from bazel.tools.push.layout import Blob

TRANSIENT_STATUS = {408, 429, 500, 502, 503, 504}
RANGE = re.compile(r"(\d+)-(\d+)")
TRANSIENT_ERRORS = (
    requests.ConnectionError,
    requests.Timeout,
    requests.exceptions.ChunkedEncodingError,
)
CONNECT_TIMEOUT, READ_TIMEOUT = 10, 300


class RegistryError(RuntimeError):
    """The push cannot go on; the message names the registry and what it said."""


class AuthenticationError(RegistryError):
    """The registry (or its token service) refused us."""


class TransientError(RegistryError):
    """Worth retrying: the connection broke or the registry said so (429, 5xx)."""


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


Body = bytes | Callable[[], IO[bytes]] | None


class Repository:
    """`host/name` on a registry, with the session, retries and authentication to reach it."""

    def __init__(
        self,
        host: str,
        name: str,
        credentials: Credentials | None,
        plain_http: bool = False,
        retry: RetryPolicy | None = None,
        log: Callable[[str], None] = lambda message: None,
    ) -> None:
        self.host, self.name = host, name
        self.log = log
        self.credentials = credentials
        self.retry = retry or RetryPolicy()
        self.base = f"{'http' if plain_http else 'https'}://{host}"
        self.session = requests.Session()
        self.session.headers["User-Agent"] = "cloud-run-grpc-kit-push"
        self._authorization: str | None = None

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

    def put_manifest(self, reference: str, manifest: bytes, media_type: str) -> str:
        """PUT the manifest under a digest or tag; returns the digest the registry computed."""
        response = self._request(
            "PUT",
            f"/v2/{self.name}/manifests/{reference}",
            body=manifest,
            headers={"Content-Type": media_type},
            ok={201},
        )
        return response.headers.get("Docker-Content-Digest", "")

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
                    body=lambda: blob.path.open("rb"),
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
        with blob.path.open("rb") as stream:
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
                        f"PATCH {urllib.parse.urlsplit(location).path}: HTTP 416"
                        f"{_registry_errors(response)} (the registry lost track of the upload)"
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
            raise self._error("PUT", location, response)
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
            path = urllib.parse.urlsplit(location).path
            raise RegistryError(
                f"registry {self.host}: GET {path} answered Range {answered!r}, not FIRST-LAST"
            )
        last = int(match.group(2))
        return self._location(response), last + 1 if last else 0

    def _location(self, response: requests.Response) -> str:
        """The absolute URL of the upload session the registry's `Location` names."""
        if "Location" not in response.headers:
            raise RegistryError(f"registry {self.host} sent no Location for an upload")
        location = response.headers["Location"]
        try:
            url = urllib.parse.urljoin(self.base + "/", location)
        except ValueError:
            url = ""
        if urllib.parse.urlsplit(url).scheme not in {"http", "https"}:
            raise RegistryError(
                f"registry {self.host} sent an upload Location that is not a URL: {location!r}"
            )
        return url

    # --- requests, retries and authentication --------------------------------------------

    def _request(
        self,
        method: str,
        path_or_url: str,
        ok: set[int],
        body: Body = None,
        headers: dict[str, str] | None = None,
        params: dict[str, str] | None = None,
        retry: bool = True,
    ) -> requests.Response:
        """One request, retried while the failure is transient, authenticating on a 401;
        returns the response if its status is in `ok`, raises RegistryError otherwise."""
        url = path_or_url if "://" in path_or_url else self.base + path_or_url
        where = f"{method} {urllib.parse.urlsplit(url).path}"
        attempts = self.retry.attempts if retry else 1
        authenticated_once = False
        attempt = 0
        while True:
            try:
                response = self._send(method, url, body, headers, params)
            except TRANSIENT_ERRORS as error:
                problem, retry_after = _describe(error), None
            except requests.RequestException as error:  # redirects, bad headers or URL...
                raise RegistryError(f"registry {self.host}: {where}: {_describe(error)}") from None
            else:
                if response.status_code == 401 and not authenticated_once:
                    self._authenticate(response)
                    authenticated_once = True
                    continue
                if response.status_code in ok:
                    return response
                if response.status_code not in TRANSIENT_STATUS:
                    raise self._error(method, url, response)
                problem = f"HTTP {response.status_code}{_registry_errors(response)}"
                retry_after = response.headers.get("Retry-After")
            attempt += 1
            if attempt >= attempts:
                raise TransientError(
                    f"registry {self.host}: {where} failed after {attempt} attempt(s): {problem}"
                )
            self._backoff(attempt - 1, f"{where}: {problem}", retry_after)

    def _backoff(self, attempt: int, problem: str, retry_after: str | None) -> None:
        """Says why, then waits before the next attempt."""
        delay = self.retry.delay(attempt, retry_after)
        self.log(f"retrying in {delay:.1f} s ({problem})")
        time.sleep(delay)

    def _send(
        self,
        method: str,
        url: str,
        body: Body,
        headers: dict[str, str] | None,
        params: dict[str, str] | None,
    ) -> requests.Response:
        """Sends once, with our Authorization; redirects followed only for GET and HEAD."""
        all_headers = dict(headers or {})
        if self._authorization:
            all_headers["Authorization"] = self._authorization
        # A file body is opened anew for each attempt; bytes are sent as they are.
        with body() if callable(body) else contextlib.nullcontext(body) as data:
            return self.session.request(
                method, url, data=data, headers=all_headers, params=params,
                timeout=(CONNECT_TIMEOUT, READ_TIMEOUT), allow_redirects=method in {"GET", "HEAD"},
            )  # fmt: skip

    def _authenticate(self, challenge: requests.Response) -> None:
        """Answers a 401's `WWW-Authenticate` (Basic or Bearer), or says why we cannot."""
        header = challenge.headers.get("WWW-Authenticate", "")
        scheme = header.split(" ", 1)[0].lower()
        if self._authorization and scheme == "basic":
            raise self._rejected(challenge)
        if scheme == "basic":
            if self.credentials is None:
                raise AuthenticationError(
                    f"registry {self.host} asks for credentials and none were found "
                    "(Google Application Default Credentials for Google registries, then "
                    "the docker config's credHelpers, auths and credsStore)"
                )
            self._authorization = self.credentials.basic()
        elif scheme == "bearer":
            self._authorization = "Bearer " + self._bearer_token(dict(_PARAM.findall(header)))
        else:
            raise AuthenticationError(
                f"registry {self.host} asks for an unsupported authentication: {header!r}"
            )

    def _bearer_token(self, challenge: dict[str, str]) -> str:
        """A token from the challenge's token service (`realm`) for our repository's scope."""
        if "realm" not in challenge:
            raise AuthenticationError(f"registry {self.host}: Bearer challenge has no realm")
        who = f"token service {challenge['realm']} of registry {self.host}"
        # Our repository's scope first; then any other the challenge names (a mount's source).
        # Registries list actions in no fixed order (`push,pull` or `pull,push`): a scope of
        # our own repository, whatever its actions, is covered by ours.
        ours = f"repository:{self.name}:"
        scopes = [ours + "pull,push"]
        for scope in challenge.get("scope", "").split():
            if not scope.startswith(ours) and scope not in scopes:
                scopes.append(scope)
        params: dict[str, str | list[str]] = {"scope": scopes}
        if "service" in challenge:
            params["service"] = challenge["service"]
        headers = {"Authorization": self.credentials.basic()} if self.credentials else {}
        try:
            response = self.session.get(
                challenge["realm"], params=params, headers=headers, timeout=CONNECT_TIMEOUT
            )
        except TRANSIENT_ERRORS as error:
            raise TransientError(f"{who}: {error}") from None
        except requests.RequestException as error:
            raise RegistryError(f"{who}: {_describe(error)}") from None
        if response.status_code in {401, 403}:
            raise self._rejected(response, token_service=challenge["realm"])
        if response.status_code != 200:
            raise self._error("GET", challenge["realm"], response)
        try:
            answer = response.json()
        except ValueError:
            content_type = response.headers.get("Content-Type", "no Content-Type")
            raise RegistryError(
                f"{who} answered HTTP 200 {content_type}, not a JSON token: {response.text[:200]!r}"
            ) from None
        token = None
        if isinstance(answer, dict):
            token = answer.get("token") or answer.get("access_token")
        if not token or not isinstance(token, str):
            raise AuthenticationError(f"{who} sent no token")
        return token

    def _rejected(
        self, response: requests.Response, token_service: str | None = None
    ) -> AuthenticationError:
        """Why the registry (or its token service) refused the credentials we presented."""
        who = (
            f"token service {token_service} of registry {self.host}"
            if token_service
            else (f"registry {self.host}")
        )
        source = self.credentials.source if self.credentials else "no credentials (anonymous)"
        return AuthenticationError(
            f"{who} rejected the credentials from {source}: "
            f"HTTP {response.status_code}{_registry_errors(response)}"
        )

    def _error(self, method: str, url: str, response: requests.Response) -> RegistryError:
        """The error for an answer neither expected nor worth retrying."""
        path = urllib.parse.urlsplit(url).path
        if response.status_code == 401:
            return self._rejected(response)
        if response.status_code == 403:
            source = self.credentials.source if self.credentials else "anonymous access"
            return AuthenticationError(
                f"registry {self.host} denied {method} {path} to {source}: HTTP 403"
                f"{_registry_errors(response)}"
            )
        return RegistryError(
            f"registry {self.host}: {method} {path}: HTTP {response.status_code}"
            f"{_registry_errors(response)}"
        )


_PARAM = re.compile(r'(\w+)="([^"]*)"')


def _registry_errors(response: requests.Response) -> str:
    """`: CODE message` from the registry's JSON error body, when it sent one."""
    try:
        answer = response.json()
    except ValueError:
        return ""
    errors = answer.get("errors") if isinstance(answer, dict) else None
    if not isinstance(errors, list):
        return ""
    details = "; ".join(
        f"{e.get('code', '')} {e.get('message', '')}".strip() for e in errors if isinstance(e, dict)
    )
    return f": {details}" if details else ""


def _describe(error: Exception) -> str:
    """`ExceptionType: first line of its message`, for one-line errors."""
    lines = str(error).splitlines()
    return f"{type(error).__name__}: {lines[0] if lines else ''}"
