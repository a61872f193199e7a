"""Who may call: the ID token in `authorization: Bearer`, per --auth_mode.

- `none`: no checks (the default; Cloud Run's front end may still require auth).
- `cloud-run`: trust the front end, which verified the token and replaced its signature before
  handing the call on; read the caller's email from the payload, for logs and
  --allowed_invokers.
- `verify`: check everything, for deployments without that front end: signature against
  Google's certificates (fetched once and cached as their Cache-Control says), audience, issuer,
  expiry with a little clock skew, optionally email_verified, then --allowed_invokers.

A missing or invalid token is UNAUTHENTICATED; a valid one not on the list, PERMISSION_DENIED.
Only application services are guarded: health and reflection stay open.
"""

from __future__ import annotations

import asyncio
import base64
import contextvars
import dataclasses
import inspect
import json
import re
import time
import urllib.request
from collections.abc import Sequence
from typing import Any

import google.auth.exceptions
import google.auth.jwt
import grpc

from python.server.handler_wrapping import Behavior, Wrap, map_behavior

NONE, CLOUD_RUN, VERIFY = "none", "cloud-run", "verify"
MODES = (NONE, CLOUD_RUN, VERIFY)
GOOGLE_CERTS_URL = "https://www.googleapis.com/oauth2/v1/certs"
GOOGLE_ISSUERS = ("accounts.google.com", "https://accounts.google.com")
CLOCK_SKEW_SECONDS = 30
DEFAULT_CERTS_MAX_AGE_SECONDS = 300

# The email of the caller of the current RPC, for the RPC log line.
CALLER: contextvars.ContextVar[str | None] = contextvars.ContextVar("caller", default=None)


class Unauthorized(Exception):
    def __init__(self, code: grpc.StatusCode, message: str) -> None:
        super().__init__(message)
        self.code = code


@dataclasses.dataclass(frozen=True)
class Policy:
    mode: str = NONE
    audiences: Sequence[str] = ()
    allowed_invokers: Sequence[str] = ()
    require_verified_email: bool = False
    certs_url: str = GOOGLE_CERTS_URL

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"--auth_mode must be one of {', '.join(MODES)}")
        if self.mode == VERIFY and not self.audiences:
            raise ValueError("--auth_mode=verify needs --audiences (the service URL, https://...)")


class GoogleCerts:
    """Google's token-signing certificates, fetched when the cached copy has expired."""

    def __init__(self, url: str) -> None:
        self._url = url
        self._certs: dict[str, str] = {}
        self._expires = 0.0
        self._lock = asyncio.Lock()
        self.fetches = 0

    async def get(self) -> dict[str, str]:
        async with self._lock:
            if time.monotonic() >= self._expires:
                self._certs, max_age = await asyncio.to_thread(self._fetch)
                self._expires = time.monotonic() + max_age
                self.fetches += 1
        return self._certs

    def _fetch(self) -> tuple[dict[str, str], float]:
        with urllib.request.urlopen(self._url, timeout=10) as response:
            certs = json.load(response)
            cache_control = response.headers.get("Cache-Control", "")
        match = re.search(r"max-age=(\d+)", cache_control)
        return certs, float(match[1]) if match else DEFAULT_CERTS_MAX_AGE_SECONDS


def bearer_token(metadata: Sequence[tuple[str, str | bytes]] | None) -> str | None:
    for key, value in metadata or ():
        if key == "authorization" and isinstance(value, str):
            scheme, _, token = value.partition(" ")
            if scheme.lower() == "bearer" and token.strip():
                return token.strip()
    return None


def unverified_payload(token: str) -> dict:
    try:
        payload = token.split(".")[1]
        return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    except (IndexError, ValueError) as error:
        raise Unauthorized(grpc.StatusCode.UNAUTHENTICATED, "malformed token") from error


class Authenticator:
    def __init__(self, policy: Policy) -> None:
        self._policy = policy
        self.certs = GoogleCerts(policy.certs_url)

    async def caller(self, metadata: Sequence[tuple[str, str | bytes]] | None) -> str | None:
        """The caller's email (None when unknown and allowed); raises Unauthorized."""
        policy = self._policy
        if policy.mode == NONE:
            return None
        token = bearer_token(metadata)
        if token is None:
            if policy.mode == VERIFY or policy.allowed_invokers:
                raise Unauthorized(grpc.StatusCode.UNAUTHENTICATED, "missing bearer token")
            return None
        if policy.mode == VERIFY:
            claims = await self._verified_claims(token)
        else:
            claims = unverified_payload(token)
        email = claims.get("email")
        if policy.require_verified_email and claims.get("email_verified") is not True:
            raise Unauthorized(grpc.StatusCode.PERMISSION_DENIED, "caller email is not verified")
        if policy.allowed_invokers and email not in policy.allowed_invokers:
            raise Unauthorized(grpc.StatusCode.PERMISSION_DENIED, f"{email} may not call this")
        return email

    async def _verified_claims(self, token: str) -> dict:
        certs = await self.certs.get()
        try:
            claims = google.auth.jwt.decode(
                token,
                certs=certs,
                audience=list(self._policy.audiences),
                clock_skew_in_seconds=CLOCK_SKEW_SECONDS,
            )
        except (google.auth.exceptions.GoogleAuthError, ValueError) as error:
            raise Unauthorized(grpc.StatusCode.UNAUTHENTICATED, f"invalid token: {error}") from None
        if claims.get("iss") not in GOOGLE_ISSUERS:
            raise Unauthorized(grpc.StatusCode.UNAUTHENTICATED, "token not issued by Google")
        return claims


def auth_wrap(authenticator: Authenticator) -> Wrap:
    """Wraps a handler so that its calls run only for callers the policy lets in."""

    async def admit(context: grpc.aio.ServicerContext) -> None:
        try:
            CALLER.set(await authenticator.caller(context.invocation_metadata()))
        except Unauthorized as denied:
            await context.abort(denied.code, str(denied))

    def guard(behavior: Behavior) -> Behavior:
        if inspect.isasyncgenfunction(behavior):

            async def guarded_stream(request: Any, context: grpc.aio.ServicerContext) -> Any:
                await admit(context)
                async for response in behavior(request, context):
                    yield response

            return guarded_stream

        async def guarded(request: Any, context: grpc.aio.ServicerContext) -> Any:
            await admit(context)
            return await behavior(request, context)

        return guarded

    return lambda method, handler: map_behavior(handler, guard)
