"""Cloud Run Admin API v1 (the Knative `serving.knative.dev/v1` surface), the calls a release
makes: namespaces.services get / create / replaceService, namespaces.revisions get and list.

The v1 API takes the kit's Knative manifests as they are. Its namespaced paths work on the
regional endpoint only (`https://REGION-run.googleapis.com`), so the region is part of the
address; `api_endpoint` replaces the whole origin (a local Cloud Run).

Errors: 429 and 503 are the API asking for patience, so they are retried, after the
`Retry-After` it gives or a doubling backoff, until the call's deadline. 409 is a conflict
(someone else changed the service since it was read): Conflict, for the caller to re-read and
try again, since only the caller can recompute the request. 401 and 403 are the credentials'
fault: CredentialsError. Anything else is ApiError with the API's own status and message, one
line. The bearer token is set on each request and never appears in an error.
"""

from __future__ import annotations

import time
import urllib.parse
from collections.abc import Callable

import requests

from bazel.tools.release.credentials import CredentialsError

API_PREFIX = "/apis/serving.knative.dev/v1"
RETRIED_STATUSES = (429, 503)
FIRST_BACKOFF_SECONDS = 1.0
MAX_BACKOFF_SECONDS = 30.0
MAX_ERROR_CHARS = 300
REQUEST_TIMEOUT_SECONDS = 60.0  # one request; the Admin API answers writes in seconds


class ApiError(Exception):
    """The API refused a call, or could not be reached: one line for the user."""


class Conflict(ApiError):
    """409: the service changed since it was read."""


class Api:
    """One project's services in one region. `deadline_seconds` bounds each call, retries
    included; `sleep` is the wait between attempts."""

    def __init__(
        self,
        endpoint: str,
        project: str,
        authorization: Callable[[], str],
        deadline_seconds: float,
        log: Callable[[str], None],
        sleep: Callable[[float], None] = time.sleep,
        request_timeout: float = REQUEST_TIMEOUT_SECONDS,
    ) -> None:
        self.base = f"{endpoint.rstrip('/')}{API_PREFIX}/namespaces/{project}"
        self._authorization = authorization
        self._deadline_seconds = deadline_seconds
        self._request_timeout = request_timeout
        self._log = log
        self._sleep = sleep
        self._session = requests.Session()

    def get_service(self, name: str) -> dict | None:
        """The live service, None when it does not exist."""
        return self._call("GET", f"/services/{name}", missing_ok=True)

    def create_service(self, document: dict, dry_run: bool) -> dict:
        return self._call("POST", "/services", body=document, dry_run=dry_run)

    def replace_service(self, name: str, document: dict, dry_run: bool) -> dict:
        return self._call("PUT", f"/services/{name}", body=document, dry_run=dry_run)

    def get_revision(self, name: str) -> dict | None:
        return self._call("GET", f"/revisions/{name}", missing_ok=True)

    def list_revisions(self, service: str) -> list[dict]:
        """Every revision of `service` (namespaces.revisions.list, page after page)."""
        revisions: list[dict] = []
        query = {"labelSelector": f"serving.knative.dev/service={service}"}
        while True:
            page = self._call("GET", "/revisions", query=query)
            revisions += page.get("items", [])
            following = page.get("metadata", {}).get("continue")
            if not following:
                return revisions
            query = {**query, "continue": following}

    def _call(
        self,
        method: str,
        path: str,
        body: dict | None = None,
        dry_run: bool = False,
        missing_ok: bool = False,
        query: dict[str, str] | None = None,
    ) -> dict:
        query = {**(query or {}), **({"dryRun": "all"} if dry_run else {})}
        url = self.base + path + ("?" + urllib.parse.urlencode(query) if query else "")
        ends = time.monotonic() + self._deadline_seconds
        backoff = FIRST_BACKOFF_SECONDS
        while True:
            try:
                response = self._session.request(
                    method,
                    url,
                    json=body,
                    headers={"Authorization": self._authorization()},
                    timeout=self._request_timeout,
                )
            except requests.RequestException as error:
                raise ApiError(
                    f"{method} {url}: {type(error).__name__}: {_short(str(error))}"
                ) from None
            status = response.status_code
            if status == 404 and missing_ok:
                return None
            if 200 <= status < 300:
                return response.json()
            what = f"{method} {url}: HTTP {status} {_google_error(response)}"
            if status in (401, 403):
                raise CredentialsError(f"the Admin API refused the credentials: {what}")
            if status == 409:
                raise Conflict(what)
            if status not in RETRIED_STATUSES:
                raise ApiError(what)
            wait = _retry_after(response) or backoff
            backoff = min(backoff * 2, MAX_BACKOFF_SECONDS)
            if time.monotonic() + wait > ends:
                raise ApiError(f"{what}; gave up after {self._deadline_seconds:g} s of retries")
            self._log(f"HTTP {status} from the Admin API, retrying in {wait:g} s")
            self._sleep(wait)


def _retry_after(response: requests.Response) -> float | None:
    """Retry-After in seconds (the API sends seconds, not dates), None when absent or odd."""
    try:
        return max(0.0, float(response.headers.get("Retry-After", "")))
    except ValueError:
        return None


def _google_error(response: requests.Response) -> str:
    """`STATUS: message` from Google's error body, else the start of the body."""
    try:
        error = response.json()["error"]
        return _short(f"{error.get('status', '')}: {error.get('message', '')}".strip(": "))
    except (ValueError, KeyError, TypeError, AttributeError):
        return _short(response.text)


def _short(text: str) -> str:
    line = " ".join(text.split())
    return line if len(line) <= MAX_ERROR_CHARS else line[: MAX_ERROR_CHARS - 3] + "..."
