"""Which credentials a push presents to a registry, looked for in the order a release pipeline
on Google Cloud expects, with no docker or gcloud installed:

1. Google Application Default Credentials (google-auth) for Artifact Registry
   (`*-docker.pkg.dev`) and Container Registry (`gcr.io`): user `oauth2accesstoken`, password an
   access token.
2. The docker config (`$DOCKER_CONFIG/config.json`, else `~/.docker/config.json`): `credHelpers`
   for the host, then `auths`, then `credsStore`.
3. None: the registry's Bearer token flow runs anonymously, or the registry lets us in as is.
"""

from __future__ import annotations

import base64
import dataclasses
import json
import os
import subprocess
from pathlib import Path

import google.auth
import google.auth.exceptions
import google.auth.transport.requests

CLOUD_PLATFORM_SCOPE = "https://www.googleapis.com/auth/cloud-platform"
GOOGLE_TOKEN_USER = "oauth2accesstoken"


class CredentialsError(RuntimeError):
    """Credentials were configured for the registry but could not be read."""


@dataclasses.dataclass(frozen=True)
class Credentials:
    """A user and password (or token) for Basic authentication, and where they came from."""

    username: str
    password: str
    source: str  # where they came from, for error messages

    def basic(self) -> str:
        """The `Authorization` header value."""
        pair = f"{self.username}:{self.password}".encode()
        return "Basic " + base64.b64encode(pair).decode()


def is_google_registry(host: str) -> bool:
    """Artifact Registry or Container Registry: Application Default Credentials apply."""
    name = host.split(":")[0]
    return name == "gcr.io" or name.endswith((".gcr.io", "-docker.pkg.dev"))


def find_credentials(host: str, google_hosts: tuple[str, ...] = ()) -> Credentials | None:
    """The first credentials found for `host` (`name[:port]`), or None for anonymous."""
    google = is_google_registry(host) or host in google_hosts
    if google and (credentials := _google_credentials()):
        return credentials
    return _docker_config_credentials(host)


def _google_credentials() -> Credentials | None:
    try:
        credentials, _ = google.auth.default(scopes=[CLOUD_PLATFORM_SCOPE])
    except google.auth.exceptions.DefaultCredentialsError:
        return None
    try:
        credentials.refresh(google.auth.transport.requests.Request())
    except google.auth.exceptions.GoogleAuthError as error:
        raise CredentialsError(f"Google Application Default Credentials: {error}") from None
    return Credentials(
        GOOGLE_TOKEN_USER, credentials.token, "Google Application Default Credentials"
    )


def docker_config_path() -> Path:
    """Where docker keeps its config: `$DOCKER_CONFIG`, else `~/.docker`."""
    directory = os.environ.get("DOCKER_CONFIG") or Path.home() / ".docker"
    return Path(directory) / "config.json"


def _docker_config_credentials(host: str) -> Credentials | None:
    path = docker_config_path()
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as error:
        raise CredentialsError(f"cannot read docker config {path}: {error}") from None
    if helper := config.get("credHelpers", {}).get(host):
        return _from_helper(helper, host, f"docker-credential-{helper} (credHelpers in {path})")
    for key, entry in config.get("auths", {}).items():
        if _auths_key_host(key) == host:
            return _from_auths_entry(entry, f"auths in {path}")
    if store := config.get("credsStore"):
        return _from_helper(store, host, f"docker-credential-{store} (credsStore in {path})")
    return None


def _auths_key_host(key: str) -> str:
    """`https://host:5000/v1/` and `host:5000` both name `host:5000`."""
    return key.split("://", 1)[-1].split("/", 1)[0]


def _from_auths_entry(entry: dict, source: str) -> Credentials:
    if "auth" in entry:
        try:
            username, _, password = base64.b64decode(entry["auth"]).decode().partition(":")
        except ValueError:
            raise CredentialsError(f"{source}: 'auth' is not base64 of user:password") from None
        return Credentials(username, password, source)
    if "username" in entry and "password" in entry:
        return Credentials(entry["username"], entry["password"], source)
    raise CredentialsError(f"{source}: entry has neither 'auth' nor 'username'/'password'")


def _from_helper(helper: str, host: str, source: str) -> Credentials | None:
    """Runs the docker credential helper protocol's `get` for `host`."""
    try:
        result = subprocess.run(
            [f"docker-credential-{helper}", "get"],
            input=host,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    except FileNotFoundError:
        raise CredentialsError(f"{source}: docker-credential-{helper} is not on PATH") from None
    if result.returncode != 0:
        if "credentials not found" in result.stdout.lower():
            return None
        detail = (result.stdout or result.stderr).strip()
        raise CredentialsError(f"{source} failed: {detail}")
    try:
        answer = json.loads(result.stdout)
        return Credentials(answer["Username"], answer["Secret"], source)
    except (ValueError, KeyError):
        raise CredentialsError(f"{source} answered something other than credentials") from None
