"""A service's smoke checks, read and validated at analysis so that a wrong declaration fails the
build, not the release: the release tool then trusts every field (bazel/tools/release/checks.py).
"""

# grpc.StatusCode's names: what a check may expect.
STATUS_CODES = [
    "OK",
    "CANCELLED",
    "UNKNOWN",
    "INVALID_ARGUMENT",
    "DEADLINE_EXCEEDED",
    "NOT_FOUND",
    "ALREADY_EXISTS",
    "PERMISSION_DENIED",
    "RESOURCE_EXHAUSTED",
    "FAILED_PRECONDITION",
    "ABORTED",
    "OUT_OF_RANGE",
    "UNIMPLEMENTED",
    "INTERNAL",
    "UNAVAILABLE",
    "DATA_LOSS",
    "UNAUTHENTICATED",
]

_KEYS = ["method", "request", "code", "response"]

_FIRST = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ_"
_REST = _FIRST + "0123456789"

def _identifier(text):
    if not text or text[0] not in _FIRST.elems():
        return False
    return all([c in _REST.elems() for c in text.elems()])

def _method_ok(method):
    service, slash, name = method.partition("/")
    parts = service.split(".")
    return (
        bool(slash) and len(parts) > 1 and _identifier(name) and
        all([_identifier(p) for p in parts])
    )

def _json_object(where, what, text):
    value = json.decode(text, default = None) if type(text) == "string" else None
    if type(value) != "dict":
        fail("{}: {} must be a JSON object as a string, got {}".format(where, what, repr(text)))
    return value

def smoke_check(where, text):
    """The check `text` (a JSON object, as the cloud_run_service macro encodes it) as a dict.

    Args:
      where: what to name in an error: the target and the check's index.
      text: the check as JSON.

    Returns:
      {"method", "request", "code", "response"}, `response` None when not given.
    """
    check = json.decode(text, default = None)
    if type(check) != "dict":
        fail("{}: a smoke check is a dict with {}, got {}".format(where, ", ".join(_KEYS), text))
    unknown = [k for k in check if k not in _KEYS]
    if unknown:
        fail("{}: unknown keys {} (a smoke check has {})".format(where, unknown, ", ".join(_KEYS)))
    method = check.get("method", "")
    if type(method) != "string" or not _method_ok(method):
        fail("{}: method must be a full method name, package.Service/Method, got {}".format(
            where,
            repr(method),
        ))
    code = check.get("code", "OK")
    if code not in STATUS_CODES:
        fail("{}: code {} is not a gRPC status name ({})".format(
            where,
            repr(code),
            ", ".join(STATUS_CODES),
        ))
    response = check.get("response")
    return {
        "method": method,
        "request": _json_object(where, "request", check.get("request", "{}")),
        "code": code,
        "response": None if response == None else _json_object(where, "response", response),
    }
