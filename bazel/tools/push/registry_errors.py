"""The errors a push to a registry ends with, and the one-line descriptions of what a registry
answered: shared by registry.py (blobs, manifests, retries) and registry_auth.py (challenges,
tokens), each of which reports through them.
"""

from __future__ import annotations

import urllib.parse

import requests

from bazel.tools.push.credentials import Credentials

TRANSIENT_ERRORS = (
    requests.ConnectionError,
    requests.Timeout,
    requests.exceptions.ChunkedEncodingError,
)
# Seconds to connect, and to wait for an answer, before a request fails as a TransientError.
CONNECT_TIMEOUT, READ_TIMEOUT = 10, 300


class RegistryError(RuntimeError):
    """The push cannot go on; the message names the registry and what it said."""


class AuthenticationError(RegistryError):
    """The registry (or its token service) refused us."""


class TransientError(RegistryError):
    """Worth retrying: the connection broke or the registry said so (429, 5xx)."""


def error_for(
    host: str, credentials: Credentials | None, method: str, url: str, response: requests.Response
) -> RegistryError:
    """The error for an answer neither expected nor worth retrying."""
    path = urllib.parse.urlsplit(url).path
    if response.status_code == 401:
        return rejected(host, credentials, response)
    if response.status_code == 403:
        source = credentials.source if credentials else "anonymous access"
        return AuthenticationError(
            f"registry {host} denied {method} {path} to {source}: HTTP 403"
            f"{registry_errors(response)}"
        )
    return RegistryError(
        f"registry {host}: {method} {path}: HTTP {response.status_code}{registry_errors(response)}"
    )


def rejected(
    host: str,
    credentials: Credentials | None,
    response: requests.Response,
    token_service: str | None = None,
) -> AuthenticationError:
    """Why the registry (or its token service) refused the credentials we presented."""
    who = (
        f"token service {token_service} of registry {host}" if token_service else f"registry {host}"
    )
    source = credentials.source if credentials else "no credentials (anonymous)"
    return AuthenticationError(
        f"{who} rejected the credentials from {source}: "
        f"HTTP {response.status_code}{registry_errors(response)}"
    )


def registry_errors(response: requests.Response) -> str:
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


def describe(error: Exception) -> str:
    """`ExceptionType: first line of its message`, for one-line errors."""
    lines = str(error).splitlines()
    return f"{type(error).__name__}: {lines[0] if lines else ''}"
