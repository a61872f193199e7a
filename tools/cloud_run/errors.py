"""Google's JSON error shape (`{"error": {"code", "message", "status"}}`), which the Admin API
returns for every failure and a client parses the same way whatever the cause."""

from __future__ import annotations

import json

_STATUS = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    404: "NOT_FOUND",
    405: "METHOD_NOT_ALLOWED",
    409: "ALREADY_EXISTS",
    411: "LENGTH_REQUIRED",
    413: "INVALID_ARGUMENT",
}


class ApiError(Exception):
    def __init__(self, code: int, message: str, status: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status or _STATUS[code]

    def body(self) -> bytes:
        error = {"code": self.code, "message": self.message, "status": self.status}
        return json.dumps({"error": error}).encode()
