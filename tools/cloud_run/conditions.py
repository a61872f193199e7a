"""Cloud Run's condition objects (GoogleCloudRunV1Condition: type, status, reason, message,
lastTransitionTime, severity) and the reasons and messages Cloud Run gives for a revision that
does not start, so that a client reads a local failure exactly as it reads a real one."""

from __future__ import annotations

import datetime

TRUE, FALSE, UNKNOWN = "True", "False", "Unknown"

# Revision conditions' reasons, as Cloud Run reports them.
CONTAINER_MISSING = "ContainerMissing"
HEALTH_CHECK_CONTAINER_ERROR = "HealthCheckContainerError"
# Service conditions' reasons.
REVISION_FAILED = "RevisionFailed"
REVISION_MISSING = "RevisionMissing"


def now() -> str:
    """RFC 3339 UTC with microseconds, as Cloud Run writes timestamps."""
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def condition(kind: str, status: str, when: str, reason: str = "", message: str = "") -> dict:
    """One condition, last changed at `when`; reason and message only when there is something
    to say (Cloud Run leaves them out of a True condition)."""
    result = {"type": kind, "status": status}
    if reason:
        result["reason"] = reason
    if message:
        result["message"] = message
    result["lastTransitionTime"] = when
    return result


def missing_image(reference: str, detail: str) -> str:
    return f"Image '{reference}' not found. {detail}"


def exited(port: int, code: int) -> str:
    return (
        "The user-provided container failed to start and listen on the port defined provided "
        f"by the PORT={port} environment variable within the allocated timeout. "
        f"Container called exit({code})."
    )


def probe_failed(port: int, detail: str) -> str:
    return (
        "The user-provided container failed the configured startup probe checks "
        f"(gRPC health on port {port}: {detail})."
    )


def not_ready(revision: str, message: str) -> str:
    """The service's message for a failed revision."""
    return f"Revision '{revision}' is not ready and cannot serve traffic. {message}"
