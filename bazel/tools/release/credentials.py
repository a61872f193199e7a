"""Google credentials of a release, from Application Default Credentials: an access token for
the Admin API, and ID tokens for the smoke tests (Cloud Run's invoker check wants a token whose
audience is the service's URL).

A release that cannot authenticate must stop before it changes anything, with one line that
says why; so the access token is fetched up front, and neither token is ever printed.
"""

from __future__ import annotations

import os

import google.auth
import google.auth.exceptions
import google.auth.transport.requests
import google.oauth2.id_token
import grpc

CLOUD_PLATFORM_SCOPE = "https://www.googleapis.com/auth/cloud-platform"
# google-auth's own errors, and the ValueError (or KeyError) it lets out of a token endpoint's
# answer that is not the JWT or JSON it expects.
_AUTH_FAILURES = (google.auth.exceptions.GoogleAuthError, ValueError, KeyError)


class CredentialsError(Exception):
    """No usable credentials: one line for the user, exit 1."""


class AccessToken:
    """The Admin API's bearer token, refreshed by google-auth when it nears its expiry."""

    def __init__(self) -> None:
        self._request = google.auth.transport.requests.Request()
        try:
            self._credentials, _ = google.auth.default(scopes=[CLOUD_PLATFORM_SCOPE])
        except google.auth.exceptions.DefaultCredentialsError as error:
            if key_file := os.environ.get("GOOGLE_APPLICATION_CREDENTIALS"):
                raise CredentialsError(
                    f"GOOGLE_APPLICATION_CREDENTIALS={key_file} is not a usable key file: "
                    f"{_first_line(error)}"
                ) from None
            raise CredentialsError(
                "no Google Application Default Credentials: run `gcloud auth application-default "
                "login`, or set GOOGLE_APPLICATION_CREDENTIALS to a key file"
            ) from None
        self.header()  # fail now, before anything changes

    def header(self) -> str:
        """The `Authorization` value; the caller must not log it."""
        if not self._credentials.valid:
            try:
                self._credentials.refresh(self._request)
            except _AUTH_FAILURES as error:
                raise CredentialsError(
                    f"Application Default Credentials could not be refreshed: {_first_line(error)}"
                ) from None
        return f"Bearer {self._credentials.token}"


def id_token_call_credentials(audience: str) -> grpc.CallCredentials:
    """Per-call `authorization: Bearer <ID token>` for `audience`, minted from ADC."""
    import google.auth.transport.grpc

    request = google.auth.transport.requests.Request()
    try:
        credentials = google.oauth2.id_token.fetch_id_token_credentials(audience, request=request)
        credentials.refresh(request)
    except _AUTH_FAILURES as error:
        raise CredentialsError(
            f"cannot mint an ID token for {audience}: {_first_line(error)}"
        ) from None
    plugin = google.auth.transport.grpc.AuthMetadataPlugin(credentials, request)
    return grpc.metadata_call_credentials(plugin, name="release_id_token")


def _first_line(error: Exception) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__
