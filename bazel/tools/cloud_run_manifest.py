"""Writes the Cloud Run service manifest: a Knative `serving.knative.dev/v1` Service, as
`gcloud run services replace` takes it, with the image pinned by digest.

    cloud_run_manifest.py --settings S.json [--environment E.json] --digest_file D --out Y.yaml

The settings are the rule's attributes; an environment file (JSON, the same keys) overrides any
of them for one environment, and its `env` entries are added to the rule's. The digest comes
from the image build, so the manifest names exactly the image that `//deploy:push` uploads.
Settings of the wrong type, and settings Cloud Run would refuse, fail the build here with every
problem listed at once, one line each: an environment file is hand-written JSON, so its types are
checked as strictly as Bazel checks the rule's attributes.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import re
import sys
import typing
from collections.abc import Callable
from pathlib import Path

import yaml

# Environment variables Cloud Run sets itself; a manifest may not set them.
RESERVED_ENV = {"PORT", "K_SERVICE", "K_REVISION", "K_CONFIGURATION"}
INGRESS = {"all", "internal", "internal-and-cloud-load-balancing"}
EXECUTION_ENVIRONMENTS = {"gen1", "gen2"}
WHOLE_CPUS = {"1", "2", "4", "6", "8"}
# Cloud Run's startup probe must give up within 240 s (period x failure threshold).
PROBE_BUDGET_SECONDS = 240
# The second generation execution environment needs at least 512 MiB (Cloud Run's memory limits).
GEN2_MIN_MEMORY_MIB = 512


@dataclasses.dataclass(frozen=True)
class Settings:
    """One service's settings; field names are the cloud_run_manifest rule's attributes."""

    service: str
    project: str
    region: str
    repository: str
    image_repository: str = ""
    port: int = 8080
    service_account: str = ""
    container_concurrency: int = 80
    timeout_seconds: int = 3600
    cpu: str = "1"
    memory: str = "512Mi"
    min_scale: int = 0
    max_scale: int = 10
    startup_cpu_boost: bool = True
    execution_environment: str = "gen2"
    ingress: str = "all"
    custom_audiences: tuple[str, ...] = ()
    env: dict[str, str] = dataclasses.field(default_factory=dict)
    startup_probe_period_seconds: int = 2
    startup_probe_failure_threshold: int = 30
    liveness_probe_period_seconds: int = 10
    liveness_probe_failure_threshold: int = 3
    probe_timeout_seconds: int = 1

    def image_name(self) -> str:
        """The repository the image is pushed to, without tag or digest."""
        if self.image_repository:
            return self.image_repository
        return f"{self.region}-docker.pkg.dev/{self.project}/{self.repository}/{self.service}"


class SettingsError(ValueError):
    """Settings Cloud Run would refuse, or of the wrong type; `problems` lists every one."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


# What each field's type accepts from JSON, in the words of the rule's attribute kinds.
_KINDS: dict[object, tuple[str, Callable[[object], bool]]] = {
    int: ("an integer", lambda v: isinstance(v, int) and not isinstance(v, bool)),
    bool: ("true or false", lambda v: isinstance(v, bool)),
    str: ("a string", lambda v: isinstance(v, str)),
    tuple[str, ...]: (
        "a list of strings",
        lambda v: isinstance(v, list) and all(isinstance(item, str) for item in v),
    ),
    dict[str, str]: (
        "an object of strings",
        lambda v: isinstance(v, dict) and all(isinstance(item, str) for item in v.values()),
    ),
}


def type_problems(values: dict, source: str) -> list[str]:
    """Keys of `values` that are not settings, and values not of their setting's type."""
    types = typing.get_type_hints(Settings)
    problems = []
    for key, value in values.items():
        if key not in types:
            problems.append(
                f"unknown setting {key!r} in the {source}; known: {', '.join(sorted(types))}"
            )
            continue
        kind, accepts = _KINDS[types[key]]
        if not accepts(value):
            problems.append(f"{key} in the {source} is {json.dumps(value)}: not {kind}")
    return problems


def load_settings(settings: dict, environment: object = None) -> Settings:
    """Settings from the rule's attributes, with an environment's overrides applied."""
    if environment is not None and not isinstance(environment, dict):
        raise SettingsError(["the environment file is not a JSON object"])
    problems = type_problems(settings, "attributes") + type_problems(
        environment or {}, "environment file"
    )
    if problems:
        raise SettingsError(problems)
    merged = dict(settings)
    for key, value in (environment or {}).items():
        merged[key] = {**merged.get("env", {}), **value} if key == "env" else value
    merged["custom_audiences"] = tuple(merged.get("custom_audiences", ()))
    try:
        result = Settings(**merged)
    except TypeError as error:
        raise SettingsError([str(error)]) from None
    if problems := settings_problems(result):
        raise SettingsError(problems)
    return result


def _cpu_count(cpu: str) -> float:
    return int(cpu[:-1]) / 1000 if cpu.endswith("m") else float(cpu)


def _memory_mib(memory: str) -> int:
    number, unit = int(memory[:-2]), memory[-2:]
    return number * 1024 if unit == "Gi" else number


def settings_problems(s: Settings) -> list[str]:
    """Everything Cloud Run would reject about these settings."""
    problems = []

    def check(ok: bool, problem: str) -> None:
        if not ok:
            problems.append(problem)

    check(
        re.fullmatch(r"[a-z]([-a-z0-9]{0,47}[a-z0-9])?", s.service) is not None,
        f"service {s.service!r}: lowercase letters, digits and hyphens, at most 49, "
        "starting with a letter",
    )
    if not s.image_repository:
        check(
            re.fullmatch(r"[a-z][-a-z0-9]{4,28}[a-z0-9]", s.project) is not None,
            f"project {s.project!r} is not a Google Cloud project ID",
        )
        check(
            re.fullmatch(r"[a-z]+(-[a-z]+)+[0-9]+", s.region) is not None,
            f"region {s.region!r} is not a region such as europe-west1",
        )
        check(
            re.fullmatch(r"[a-z]([-a-z0-9]*[a-z0-9])?", s.repository) is not None,
            f"repository {s.repository!r} is not an Artifact Registry repository name",
        )
    check(1 <= s.port <= 65535, f"port {s.port} is not a TCP port")
    check(
        not s.service_account
        or re.fullmatch(r"[^@\s]+@[^@\s]+\.gserviceaccount\.com", s.service_account) is not None,
        f"service_account {s.service_account!r} is not a service account email",
    )
    check(
        1 <= s.container_concurrency <= 1000,
        f"container_concurrency {s.container_concurrency}: 1 to 1000",
    )
    check(1 <= s.timeout_seconds <= 3600, f"timeout_seconds {s.timeout_seconds}: 1 to 3600")

    cpu_ok = s.cpu in WHOLE_CPUS or re.fullmatch(r"[1-9][0-9]{1,2}m", s.cpu) is not None
    memory_ok = re.fullmatch(r"[1-9][0-9]*(Mi|Gi)", s.memory) is not None
    check(cpu_ok, f"cpu {s.cpu!r}: one of {sorted(WHOLE_CPUS)} or millicores below 1000m")
    check(memory_ok, f"memory {s.memory!r}: a size such as 512Mi or 2Gi")
    if cpu_ok and memory_ok:
        cpu, mib = _cpu_count(s.cpu), _memory_mib(s.memory)
        check(128 <= mib <= 32 * 1024, f"memory {s.memory}: 128Mi to 32Gi")
        check(
            s.execution_environment != "gen2" or mib >= GEN2_MIN_MEMORY_MIB,
            f"memory {s.memory}: execution environment gen2 needs at least {GEN2_MIN_MEMORY_MIB}Mi",
        )
        check(
            cpu >= 1 or s.container_concurrency == 1,
            f"cpu {s.cpu} below 1 needs container_concurrency 1",
        )
        for above_gib, least_cpu in ((4, 2), (8, 4), (16, 6), (24, 8)):
            check(
                mib <= above_gib * 1024 or cpu >= least_cpu,
                f"memory {s.memory} above {above_gib}Gi needs at least {least_cpu} cpu",
            )
        for cpus, least_gib in ((4, 2), (6, 4), (8, 4)):
            check(
                cpu < cpus or mib >= least_gib * 1024,
                f"cpu {s.cpu} needs at least {least_gib}Gi of memory",
            )
    check(s.min_scale >= 0, f"min_scale {s.min_scale} is negative")
    check(s.max_scale >= 1, f"max_scale {s.max_scale} must be at least 1")
    check(s.min_scale <= s.max_scale, f"min_scale {s.min_scale} above max_scale {s.max_scale}")
    check(
        s.execution_environment in EXECUTION_ENVIRONMENTS,
        f"execution_environment {s.execution_environment!r}: gen1 or gen2",
    )
    check(s.ingress in INGRESS, f"ingress {s.ingress!r}: one of {sorted(INGRESS)}")
    for audience in s.custom_audiences:
        check(bool(audience.strip()), "custom_audiences has an empty entry")
    for name in s.env:
        check(
            re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name) is not None,
            f"env name {name!r} is not a valid variable name",
        )
        check(name not in RESERVED_ENV, f"env {name} is set by Cloud Run itself")
    for probe in ("startup", "liveness"):
        period = getattr(s, f"{probe}_probe_period_seconds")
        threshold = getattr(s, f"{probe}_probe_failure_threshold")
        check(1 <= period <= 240, f"{probe} probe period {period}: 1 to 240 s")
        check(threshold >= 1, f"{probe} probe failure threshold {threshold} must be at least 1")
        check(
            period * threshold <= PROBE_BUDGET_SECONDS,
            f"{probe} probe gives up after {period * threshold} s; Cloud Run allows "
            f"{PROBE_BUDGET_SECONDS} s",
        )
        check(
            1 <= s.probe_timeout_seconds <= period,
            f"probe timeout {s.probe_timeout_seconds} s must be 1 s to the {probe} period",
        )
    return problems


def _probe(s: Settings, period: int, threshold: int) -> dict:
    # The health service "" is the server as a whole: SERVING once ready, NOT_SERVING on SIGTERM.
    return {
        "grpc": {"port": s.port, "service": ""},
        "periodSeconds": period,
        "failureThreshold": threshold,
        "timeoutSeconds": s.probe_timeout_seconds,
    }


def render(s: Settings, image: str) -> dict:
    """The Service document for `image` (a `REPOSITORY@sha256:...` reference)."""
    service_annotations = {"run.googleapis.com/ingress": s.ingress}
    if s.custom_audiences:
        service_annotations["run.googleapis.com/custom-audiences"] = json.dumps(
            list(s.custom_audiences)
        )
    revision_annotations = {
        "autoscaling.knative.dev/minScale": str(s.min_scale),
        "autoscaling.knative.dev/maxScale": str(s.max_scale),
        "run.googleapis.com/startup-cpu-boost": str(s.startup_cpu_boost).lower(),
        "run.googleapis.com/execution-environment": s.execution_environment,
    }
    container: dict = {
        "image": image,
        # h2c: Cloud Run speaks HTTP/2 to the container, which gRPC streaming needs.
        "ports": [{"name": "h2c", "containerPort": s.port}],
        "resources": {"limits": {"cpu": s.cpu, "memory": s.memory}},
        "startupProbe": _probe(
            s, s.startup_probe_period_seconds, s.startup_probe_failure_threshold
        ),
        "livenessProbe": _probe(
            s, s.liveness_probe_period_seconds, s.liveness_probe_failure_threshold
        ),
    }
    if s.env:
        container["env"] = [{"name": k, "value": v} for k, v in sorted(s.env.items())]
    revision_spec: dict = {
        "containerConcurrency": s.container_concurrency,
        "timeoutSeconds": s.timeout_seconds,
    }
    if s.service_account:
        revision_spec["serviceAccountName"] = s.service_account
    revision_spec["containers"] = [container]
    return {
        "apiVersion": "serving.knative.dev/v1",
        "kind": "Service",
        "metadata": {
            "name": s.service,
            "labels": {"cloud.googleapis.com/location": s.region},
            "annotations": service_annotations,
        },
        "spec": {
            "template": {
                "metadata": {"annotations": revision_annotations},
                "spec": revision_spec,
            },
        },
    }


def container(document: dict) -> dict:
    """The service's one container, which names the image."""
    return document["spec"]["template"]["spec"]["containers"][0]


def dump(document: dict) -> str:
    return "# Deploy with: gcloud run services replace service.yaml\n" + yaml.safe_dump(
        document, sort_keys=False, default_flow_style=False
    )


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--settings", required=True, type=Path)
    parser.add_argument("--environment", type=Path, help="JSON overrides for one environment")
    parser.add_argument("--digest_file", required=True, type=Path)
    parser.add_argument("--out", required=True, type=Path)
    args = parser.parse_args(argv[1:])

    source = f" (environment {args.environment})" if args.environment else ""
    try:
        environment = None
        if args.environment:
            try:
                environment = json.loads(args.environment.read_text(encoding="utf-8"))
            except json.JSONDecodeError as error:
                raise SettingsError([f"the environment file is not JSON: {error}"]) from None
        settings = load_settings(json.loads(args.settings.read_text()), environment)
    except SettingsError as error:
        for problem in error.problems:
            print(f"cloud_run_manifest: bad settings{source}: {problem}", file=sys.stderr)
        return 2
    digest = args.digest_file.read_text().strip()
    args.out.write_text(dump(render(settings, f"{settings.image_name()}@{digest}")))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
