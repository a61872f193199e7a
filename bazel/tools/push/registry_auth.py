"""Authentication to a registry: answering a 401's `WWW-Authenticate` challenge with Basic
(the credentials found) or a Bearer token from the registry's token service (with them, or
anonymously), and saying why a registry or token service refused us. A token service gets the
credentials only over HTTPS, on loopback, or on the registry's own origin (origins.py); a
challenge naming one over plain HTTP elsewhere ends the push rather than send them.

Kept apart from registry.py, which moves blobs and manifests: it holds the Authorization this
module earned and sends it, and hands this module each challenge. The errors and the helpers
both use are in registry_errors.py, so that neither module imports the other's internals.
"""

from __future__ import annotations

import json
import re
import urllib.parse

import requests

from bazel.tools.push.credentials import Credentials
from bazel.tools.push.deadline import OutOfTime, Stalled
from bazel.tools.push.origins import Origin, origin_of, token_service_may_get_credentials
from bazel.tools.push.registry_errors import (
    TRANSIENT_ERRORS,
    AuthenticationError,
    PushTimeout,
    RegistryError,
    TransientError,
    describe,
    error_for,
    printable,
    rejected,
)
from bazel.tools.push.transport import TOKEN, BadAnswer, Reply, Transport

_PARAM = re.compile(r'(\w+)="([^"]*)"')


class Authenticator:
    """The Authorization header for one repository of one registry, earned from challenges."""

    def __init__(
        self,
        host: str,
        name: str,
        credentials: Credentials | None,
        transport: Transport,
        origin: Origin,
    ) -> None:
        """`origin`: the registry's, the one origin its Authorization is sent to."""
        self.host, self.name = host, name
        self.credentials = credentials
        self.transport = transport
        self.origin = origin
        self.authorization: str | None = None

    def authenticate(self, challenge: Reply) -> None:
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
                f"registry {self.host} asks for an unsupported authentication: "
                f"'{printable(header)}'"
            )

    def bearer_token(self, challenge: dict[str, str]) -> str:
        """A token from the challenge's token service (`realm`) for our repository's scope."""
        if "realm" not in challenge:
            raise AuthenticationError(f"registry {self.host}: Bearer challenge has no realm")
        realm = challenge["realm"]
        who = f"token service {printable(realm)} of registry {self.host}"
        try:
            realm_origin = origin_of(realm)
        except ValueError:
            raise RegistryError(f"{who}: the realm is not an http(s) URL") from None
        if self.credentials and not token_service_may_get_credentials(realm_origin, self.origin):
            raise AuthenticationError(
                f"{who} is plain HTTP on another host: the push sends the credentials from "
                f"{self.credentials.source} to a token service only over HTTPS or on loopback"
            )
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
        try:
            reply = self.transport.exchange(
                "GET",
                realm,
                TOKEN,
                authorization=self.credentials.basic() if self.credentials else None,
                origin=realm_origin,
                params=params,
                follow_redirects=True,
            )
        except (*TRANSIENT_ERRORS, Stalled) as error:
            raise TransientError(f"{who}: {describe(error)}") from None
        except OutOfTime as error:
            raise PushTimeout(f"{who}: {error}") from None
        except BadAnswer as error:
            raise RegistryError(f"{who}: {error}") from None
        except requests.RequestException as error:
            raise RegistryError(f"{who}: {describe(error)}") from None
        if reply.status_code in {401, 403}:
            raise rejected(self.host, self.credentials, reply, token_service=printable(realm))
        if reply.status_code != 200:
            where = f"GET {printable(urllib.parse.urlsplit(realm).path)}"
            raise error_for(self.host, self.credentials, where, reply)
        try:
            answer = json.loads(reply.body or b"")
        except (ValueError, RecursionError):
            content_type = printable(reply.headers.get("Content-Type", "no Content-Type"))
            text = printable((reply.body or b"")[:200].decode("utf-8", "replace"))
            raise RegistryError(
                f"{who} answered HTTP 200 {content_type}, not a JSON token: '{text}'"
            ) from None
        token = None
        if isinstance(answer, dict):
            token = answer.get("token") or answer.get("access_token")
        if not token or not isinstance(token, str):
            raise AuthenticationError(f"{who} sent no token")
        return token
