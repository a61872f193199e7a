"""Who may call: the caller's Google ID token, per --auth_mode.

Where the token is: Cloud Run verifies `X-Serverless-Authorization` when a request carries it,
and then passes `Authorization` to the container untouched (it may be a token for the service
itself); otherwise it verifies `Authorization`. So the identity comes from
`x-serverless-authorization` when present, else from `authorization`; a request that carries
the header read twice is refused as ambiguous.

- `none`: no checks (the default; Cloud Run's front end may still require auth).
- `cloud-run`: trust Cloud Run's IAM check, which verified the token and replaced its signature
  before handing the call on; read the caller's email from the payload, for logs and
  --allowed_invokers. This relies on that check: a service deployed with
  `--allow-unauthenticated` gets no check at all, and must use `verify`.
- `verify`: check everything, for deployments without that front end: signature against
  Google's certificates (certs.py), audience, issuer, expiry with a little clock skew,
  optionally email_verified, then --allowed_invokers.

A missing or invalid token is UNAUTHENTICATED; a valid one not on the list, PERMISSION_DENIED;
no certificates to check against, UNAVAILABLE. Only application services are guarded: health
and reflection stay open.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import inspect
import json
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import grpc

from python.runtime import rpc_logging
from python.runtime.certs import GOOGLE_CERTS_URL, CertsUnavailable, GoogleCerts
from python.runtime.handler_wrapping import Behavior, Wrap, map_behavior

if TYPE_CHECKING:
    from types import ModuleType

NONE, CLOUD_RUN, VERIFY = "none", "cloud-run", "verify"
MODES = (NONE, CLOUD_RUN, VERIFY)
GOOGLE_ISSUERS = ("accounts.google.com", "https://accounts.google.com")
CLOCK_SKEW_SECONDS = 30
# The header Cloud Run verifies when a request carries it, and the one it verifies otherwise.
SERVERLESS_AUTHORIZATION, AUTHORIZATION = "x-serverless-authorization", "authorization"


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


def bearer_token(metadata: Sequence[tuple[str, str | bytes]] | None) -> str | None:
    """The token of the header Cloud Run verified; None when there is none."""
    values: dict[str, list[str | bytes]] = {SERVERLESS_AUTHORIZATION: [], AUTHORIZATION: []}
    for key, value in metadata or ():
        if key in values:
            values[key].append(value)
    header = SERVERLESS_AUTHORIZATION if values[SERVERLESS_AUTHORIZATION] else AUTHORIZATION
    if not values[header]:
        return None
    if len(values[header]) > 1:
        raise Unauthorized(grpc.StatusCode.UNAUTHENTICATED, f"more than one {header} header")
    value = values[header][0]
    scheme, _, token = value.partition(" ") if isinstance(value, str) else ("", "", "")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized(grpc.StatusCode.UNAUTHENTICATED, f"{header} is not a bearer token")
    return token.strip()


def unverified_payload(token: str) -> dict[str, object]:
    """The claims of a JWT, unchecked: a JSON object, or Unauthorized."""
    parts = token.split(".")
    try:
        if len(parts) != 3:
            raise ValueError("not three parts")
        claims = json.loads(base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4)))
    except (ValueError, binascii.Error, RecursionError):  # deep nesting is the caller's too
        raise Unauthorized(grpc.StatusCode.UNAUTHENTICATED, "malformed token") from None
    if not isinstance(claims, dict):
        raise Unauthorized(grpc.StatusCode.UNAUTHENTICATED, "token claims are not an object")
    return claims


def _google_auth() -> ModuleType:
    """The google.auth package with its jwt and exceptions modules, imported only by a server
    that verifies tokens: google-auth and the cryptography under it take about a tenth of a
    second to import, which every start of every other server would pay (a Cloud Run cold
    start is the latency of the first call after an idle period)."""
    import google.auth.exceptions
    import google.auth.jwt

    return google.auth


# What google-auth's rejections start with, and what the caller is told instead: its messages
# quote the token's own parts (a segment that does not parse, the key id, the audience), and the
# status detail goes to the log and to every proxy on the way back.
_REJECTIONS = (
    ("Token expired", "expired"),
    ("Token used too early", "not valid yet"),
    ("Token has wrong audience", "wrong audience"),
    ("Could not verify token signature", "bad signature"),
    ("Certificate for key id", "signed by an unknown key"),
    ("Unsupported signature algorithm", "unsupported signature algorithm"),
    ("Token does not contain required claim", "no iat or exp claim"),
)


def _rejection_reason(message: str) -> str:
    """A fixed reason for a google-auth rejection, with nothing of the token in it."""
    for prefix, reason in _REJECTIONS:
        if message.startswith(prefix):
            return reason
    return "malformed"


class Authenticator:
    def __init__(self, policy: Policy) -> None:
        self._policy = policy
        self.certs = GoogleCerts(policy.certs_url)
        if policy.mode == VERIFY:
            _google_auth()  # imported now, as the server is built, so that no call waits for it

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
        claims = unverified_payload(token)
        if policy.mode == VERIFY:
            claims = await self._verified_claims(token)
        email = claims.get("email")
        if not isinstance(email, str):
            email = None
        if policy.require_verified_email and claims.get("email_verified") is not True:
            raise Unauthorized(grpc.StatusCode.PERMISSION_DENIED, "caller email is not verified")
        if policy.allowed_invokers and email not in policy.allowed_invokers:
            raise Unauthorized(grpc.StatusCode.PERMISSION_DENIED, f"{email} may not call this")
        return email

    async def _verified_claims(self, token: str) -> dict:
        try:
            certs = await self.certs.get()
        except CertsUnavailable as error:
            raise Unauthorized(grpc.StatusCode.UNAVAILABLE, str(error)) from None
        google_auth = _google_auth()  # already imported: a lookup in sys.modules
        try:
            claims = google_auth.jwt.decode(
                token,
                certs=certs,
                audience=list(self._policy.audiences),
                clock_skew_in_seconds=CLOCK_SKEW_SECONDS,
            )
        except (
            google_auth.exceptions.GoogleAuthError,
            ValueError,
            TypeError,
            KeyError,
            RecursionError,
        ) as error:
            reason = _rejection_reason(str(error))
            raise Unauthorized(
                grpc.StatusCode.UNAUTHENTICATED, f"invalid token: {reason}"
            ) from None
        if claims.get("iss") not in GOOGLE_ISSUERS:
            raise Unauthorized(grpc.StatusCode.UNAUTHENTICATED, "token not issued by Google")
        return claims


def auth_wrap(authenticator: Authenticator) -> Wrap:
    """Wraps a handler so that its calls run only for callers the policy lets in."""

    async def admit(context: grpc.aio.ServicerContext) -> None:
        try:
            rpc_logging.note_caller(await authenticator.caller(context.invocation_metadata()))
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
