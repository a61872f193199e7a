"""Authentication to a registry: answering a 401's `WWW-Authenticate` challenge with Basic
(the credentials found) or a Bearer token from the registry's token service (with them, or
anonymously), and saying why a registry or token service refused us.

Kept apart from registry.py, which moves blobs and manifests: it holds the Authorization this
module earned and sends it, and hands this module each challenge. The errors and the helpers
both use are in registry_errors.py, so that neither module imports the other's internals.
"""

from __future__ import annotations

import re

import requests

from bazel.tools.push.credentials import Credentials
from bazel.tools.push.registry_errors import (
    CONNECT_TIMEOUT,
    TRANSIENT_ERRORS,
    AuthenticationError,
    RegistryError,
    TransientError,
    describe,
    error_for,
    rejected,
)

_PARAM = re.compile(r'(\w+)="([^"]*)"')


class Authenticator:
    """The Authorization header for one repository of one registry, earned from challenges."""

    def __init__(
        self,
        host: str,
        name: str,
        credentials: Credentials | None,
        session: requests.Session,
    ) -> None:
        self.host, self.name = host, name
        self.credentials = credentials
        self.session = session
        self.authorization: str | None = None

    def authenticate(self, challenge: requests.Response) -> None:
        """Answers a 401's `WWW-Authenticate` (Basic or Bearer), or says why we cannot."""
        header = challenge.headers.get("WWW-Authenticate", "")
        scheme = header.split(" ", 1)[0].lower()
        if self.authorization and scheme == "basic":
            raise rejected(self.host, self.credentials, challenge)
        if scheme == "basic":
            if self.credentials is None:
                raise AuthenticationError(
                    f"registry {self.host} asks for credentials and none were found "
                    "(Google Application Default Credentials for Google registries, then "
                    "the docker config's credHelpers, auths and credsStore)"
                )
            self.authorization = self.credentials.basic()
        elif scheme == "bearer":
            self.authorization = "Bearer " + self.bearer_token(dict(_PARAM.findall(header)))
        else:
            raise AuthenticationError(
                f"registry {self.host} asks for an unsupported authentication: {header!r}"
            )

    def bearer_token(self, challenge: dict[str, str]) -> str:
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
            raise RegistryError(f"{who}: {describe(error)}") from None
        if response.status_code in {401, 403}:
            raise rejected(self.host, self.credentials, response, token_service=challenge["realm"])
        if response.status_code != 200:
            raise error_for(self.host, self.credentials, "GET", challenge["realm"], response)
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
