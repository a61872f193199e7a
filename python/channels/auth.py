"""Call credentials for Cloud Run's service-to-service auth: `authorization: Bearer <ID token>`.

Cloud Run checks a Google-signed ID token whose audience is the service URL. google-auth mints
it from Application Default Credentials (a service-account key file named by
GOOGLE_APPLICATION_CREDENTIALS, or the metadata server on Google Cloud) and refreshes it before
it expires; AuthMetadataPlugin asks it for a valid token before every call, so a channel can
live for days. `--token_file` is for a token minted elsewhere (re-read when the file changes).

google-auth (and requests, its HTTP transport) is imported by id_token_credentials(), not with
this module: a server that imports the channels for a relay it may never use (the ping
service without --upstream, or with a plaintext one) does not pay their tenth of a second of
start.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

import grpc


class AuthError(Exception):
    """No way to obtain a token: a message for the user, exit 2."""


AUTHORIZATION = "authorization"
# Cloud Run verifies this header instead of Authorization when a request has it, and hands
# Authorization on to the service untouched: a relay's own token goes here.
SERVERLESS_AUTHORIZATION = "x-serverless-authorization"


class _InHeader(grpc.AuthMetadataPlugin):
    """Another plugin's `authorization` value, sent in `header` instead."""

    def __init__(self, plugin: grpc.AuthMetadataPlugin, header: str) -> None:
        self._plugin = plugin
        self._header = header

    def __call__(
        self, context: grpc.AuthMetadataContext, callback: grpc.AuthMetadataPluginCallback
    ) -> None:
        def renamed(metadata, error) -> None:
            callback(
                tuple((self._header if k == AUTHORIZATION else k, v) for k, v in metadata or ()),
                error,
            )

        self._plugin(context, renamed)


def id_token_credentials(audience: str, header: str = AUTHORIZATION) -> grpc.CallCredentials:
    """`header: Bearer <ID token for audience>` on every call."""
    import google.auth.exceptions
    import google.auth.transport.grpc
    import google.auth.transport.requests
    import google.oauth2.id_token

    request = google.auth.transport.requests.Request()
    try:
        credentials = google.oauth2.id_token.fetch_id_token_credentials(audience, request=request)
        credentials.refresh(request)  # fail now, with a clear message, not on the first call
    except google.auth.exceptions.GoogleAuthError as error:
        raise AuthError(f"cannot mint an ID token for audience {audience}: {error}") from None
    plugin = google.auth.transport.grpc.AuthMetadataPlugin(credentials, request)
    if header != AUTHORIZATION:
        plugin = _InHeader(plugin, header)
    return grpc.metadata_call_credentials(plugin, name="google_id_token")


class _TokenFilePlugin(grpc.AuthMetadataPlugin):
    def __init__(self, path: Path) -> None:
        self._path = path
        self._lock = threading.Lock()
        self._stamp: tuple[int, int] | None = None
        self._token = ""

    def _read(self) -> str:
        stat = os.stat(self._path)
        with self._lock:
            if (stat.st_mtime_ns, stat.st_size) != self._stamp:
                self._token = self._path.read_text(encoding="utf-8").strip()
                self._stamp = (stat.st_mtime_ns, stat.st_size)
            return self._token

    def __call__(
        self, context: grpc.AuthMetadataContext, callback: grpc.AuthMetadataPluginCallback
    ) -> None:
        try:
            callback((("authorization", f"Bearer {self._read()}"),), None)
        except OSError as error:
            callback((), error)


def token_file_credentials(path: str) -> grpc.CallCredentials:
    plugin = _TokenFilePlugin(Path(path))
    try:
        if not plugin._read():
            raise AuthError(f"--token_file {path} is empty")
    except OSError as error:
        raise AuthError(f"cannot read --token_file {path}: {error.strerror}") from None
    return grpc.metadata_call_credentials(plugin, name="token_file")
