"""Cloud Run's invoker check, as the front end applies it to each request of a private service.

A service is private unless its manifest turns the check off
(`run.googleapis.com/invoker-iam-disabled: "true"`, the kit's `public`): then every request
must carry a Google-signed ID token whose audience is the service's URL, the URL it was called
at (a tag's), or one of its custom audiences (`run.googleapis.com/custom-audiences`). The token
is read from `X-Serverless-Authorization` when the request has one, else from `Authorization`
(`Bearer TOKEN`). No token is 403, a token that fails a check 401, as Cloud Run answers. A
request that passes reaches the container with that header's signature replaced by
`SIGNATURE_REMOVED_BY_GOOGLE`, as Cloud Run hands it on, so the container can read the caller
(the runtime's `--auth_mode=cloud-run`) but cannot replay the token elsewhere.

Here "Google-signed" means signed by the local Cloud Run's own key (tokens.py): the tokens its
token endpoint and metadata endpoint mint. Any holder of such a token is an invoker; there is
no IAM policy to say who else may call.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import re
from collections.abc import Callable, Sequence

from hpack.struct import HeaderTuple, NeverIndexedHeaderTuple

INVOKER_IAM_DISABLED = "run.googleapis.com/invoker-iam-disabled"
CUSTOM_AUDIENCES = "run.googleapis.com/custom-audiences"
SIGNATURE_REMOVED = b"SIGNATURE_REMOVED_BY_GOOGLE"
SERVERLESS_AUTHORIZATION, AUTHORIZATION = b"x-serverless-authorization", b"authorization"
BAD_REQUEST, FORBIDDEN, UNAUTHORIZED = 400, 403, 401
# A pseudo-header (`:path`) or an RFC 9110 token without uppercase letters.
_HEADER_NAME = re.compile(rb":?[!#$%&'*+\-.^_`|~0-9a-z]+")

# verify(token, audiences) -> claims; ValueError naming the failed check, never the token.
Verifier = Callable[[str, Sequence[str]], dict]


@dataclasses.dataclass(frozen=True)
class Access:
    """Who may call a service: everyone (`public`), or holders of an ID token for one of
    `audiences`."""

    public: bool
    audiences: tuple[str, ...] = ()


def access_of(annotations: dict, service_url: str) -> Access:
    """A service's Access from its manifest's annotations and its URL."""
    if annotations.get(INVOKER_IAM_DISABLED) == "true":
        return Access(public=True)
    custom: object = []
    # One that is not a JSON list adds no audience (the kit writes a list; Cloud Run refuses
    # anything else at deploy time, which the local API does not check).
    with contextlib.suppress(ValueError):
        custom = json.loads(annotations.get(CUSTOM_AUDIENCES) or "[]")
    if not isinstance(custom, list):
        custom = []
    return Access(public=False, audiences=(service_url, *[str(a) for a in custom]))


@dataclasses.dataclass(frozen=True)
class Refusal:
    status: int
    reason: str


def check(
    headers: list[HeaderTuple], access: Access, called_at: str, verify: Verifier
) -> list[HeaderTuple] | Refusal:
    """The request's headers to hand on (the verified token's signature removed), or why
    not. `called_at` is the URL the connection was routed by (its scheme, :authority)."""
    if access.public:
        return headers
    # HTTP/2 header names are lowercase tokens (RFC 9113 8.2.1): a request with any other is
    # malformed. Passed on, `X-Serverless-Authorization` would be a second, unchecked copy
    # of the header checked, for a server that folds case.
    if any(not _HEADER_NAME.fullmatch(bytes(h[0])) for h in headers):
        return Refusal(BAD_REQUEST, "a header name that is not a lowercase token")
    named = [h for h in headers if h[0] == SERVERLESS_AUTHORIZATION]
    if not named:
        named = [h for h in headers if h[0] == AUTHORIZATION]
    if not named:
        return Refusal(FORBIDDEN, "no ID token")
    if len(named) > 1:
        return Refusal(UNAUTHORIZED, f"{named[0][0].decode()} is repeated")
    scheme, _, token = bytes(named[0][1]).partition(b" ")
    if scheme.lower() != b"bearer" or not token:
        return Refusal(UNAUTHORIZED, f"{named[0][0].decode()} is not 'Bearer TOKEN'")
    try:
        verify(token.decode("ascii"), (*access.audiences, called_at))
    except (ValueError, UnicodeDecodeError) as error:
        return Refusal(UNAUTHORIZED, str(error))
    unsigned = scheme + b" " + token.rpartition(b".")[0] + b"." + SIGNATURE_REMOVED
    return [NeverIndexedHeaderTuple(h[0], unsigned) if h is named[0] else h for h in headers]
