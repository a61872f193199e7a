"""The OpenTelemetry collector as a Cloud Run sidecar: the second container of the revision, which
the service's container sends its spans and metrics to on localhost and which exports them to
Cloud Trace and Cloud Monitoring.

Cloud Run's multi-container services: only the ingress container (the service's) has a port;
the sidecar has none and shares the instance's loopback. The revision annotation
`run.googleapis.com/container-dependencies` makes Cloud Run start the service's container only
once the collector's startup probe passed, so the first call's spans have somewhere to go.
The collector's configuration comes from Secret Manager, mounted as a file, as Google's
"Write OTLP metrics by using an OpenTelemetry Collector sidecar" tutorial does: the kit does not
write a collector config of its own (its receivers, processors and exporters are the user's).
docs/observability.md "Collector sidecar on Cloud Run".
"""

from __future__ import annotations

import json
import re

from bazel.tools.manifest_secrets import SECRET_REFERENCE
from bazel.tools.manifest_settings import Settings

# Container names of a revision with the sidecar; the dependency annotation refers to them.
APP_CONTAINER = "app"
COLLECTOR_CONTAINER = "collector"
DEPENDENCIES_ANNOTATION = "run.googleapis.com/container-dependencies"
# The runtime exports OTLP over gRPC to this (docs/observability.md); the config's otlp receiver
# must listen on 4317.
ENDPOINT_VARIABLE = "OTEL_EXPORTER_OTLP_ENDPOINT"
ENDPOINT = "http://localhost:4317"
# The collector's health_check extension (its default port): the startup probe asks it.
HEALTH_PORT = 13133
CONFIG_DIRECTORY = "/etc/otelcol-google"
CONFIG_FILE = "config.yaml"
CONFIG_VOLUME = "otel-collector-config"
# An image pinned by digest, or by an explicit tag other than `latest` (a tag that moves would
# change the collector under a revision nobody redeployed).
IMAGE = re.compile(
    r"(?P<repository>[a-z0-9.-]+(:[0-9]+)?(/[a-z0-9._-]+)+)"
    r"(@sha256:[0-9a-f]{64}|:(?P<tag>[A-Za-z0-9_][A-Za-z0-9._-]{0,127}))"
)


def collector_problems(s: Settings) -> list[str]:
    """What Cloud Run, or the kit, would refuse of the sidecar's settings."""
    if not s.otel_collector_image:
        if s.otel_collector_config:
            return ["otel_collector_config without otel_collector_image: no collector to read it"]
        return []
    problems = []
    match = IMAGE.fullmatch(s.otel_collector_image)
    if match is None or match["tag"] == "latest":
        problems.append(
            f"otel_collector_image {s.otel_collector_image!r} must be pinned: REPOSITORY@sha256:"
            "DIGEST or REPOSITORY:TAG with a tag other than latest, e.g. us-docker.pkg.dev/"
            "cloud-ops-agents-artifacts/google-cloud-opentelemetry-collector/otelcol-google:0.137.0"
        )
    if SECRET_REFERENCE.fullmatch(s.otel_collector_config) is None:
        problems.append(
            f"otel_collector_config {s.otel_collector_config!r} is not SECRET:VERSION: the "
            "collector's config (a Secret Manager secret ID and a version number or latest), "
            f"mounted as {CONFIG_DIRECTORY}/{CONFIG_FILE}"
        )
    for setting in ("env", "secret_env"):
        if ENDPOINT_VARIABLE in getattr(s, setting):
            problems.append(
                f"{setting} {ENDPOINT_VARIABLE} is set by otel_collector_image (the sidecar, "
                f"{ENDPOINT}); remove it"
            )
    return problems


def collector_env(s: Settings) -> dict[str, str]:
    """What the service's container needs to reach the sidecar: nothing without one."""
    return {ENDPOINT_VARIABLE: ENDPOINT} if s.otel_collector_image else {}


def collector_revision(s: Settings, startup_probe: dict) -> tuple[dict, dict, dict]:
    """The sidecar container, its config volume and the dependency annotation.

    `startup_probe`: the service's own probe timing (period, threshold, timeout), used for the
    collector's too, so the collector gets the same startup budget as the service.
    """
    secret, version = s.otel_collector_config.rsplit(":", 1)
    container = {
        "name": COLLECTOR_CONTAINER,
        "image": s.otel_collector_image,
        "args": [f"--config={CONFIG_DIRECTORY}/{CONFIG_FILE}"],
        "startupProbe": {
            "httpGet": {"path": "/", "port": HEALTH_PORT},
            **{k: v for k, v in startup_probe.items() if k != "grpc"},
        },
        "volumeMounts": [{"name": CONFIG_VOLUME, "mountPath": CONFIG_DIRECTORY}],
    }
    volume = {
        "name": CONFIG_VOLUME,
        "secret": {"secretName": secret, "items": [{"key": version, "path": CONFIG_FILE}]},
    }
    annotation = {
        DEPENDENCIES_ANNOTATION: json.dumps(
            {APP_CONTAINER: [COLLECTOR_CONTAINER]}, separators=(",", ":")
        )
    }
    return container, volume, annotation
