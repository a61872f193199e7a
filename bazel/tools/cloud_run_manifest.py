"""Writes the Cloud Run service manifest: a Knative `serving.knative.dev/v1` Service, as
`gcloud run services replace` takes it, with the image pinned by digest.

    cloud_run_manifest.py --settings S.json [--environment E.json] --digest_file D --out Y.yaml
    cloud_run_manifest.py --check_service_keys E.json... --service NAME... --out STAMP

The settings are the rule's attributes, every one (the rule's attributes hold the defaults; this
tool has none of its own). An environment file (JSON) overrides them for one environment: its
top-level keys apply to every service, and `"services": {"NAME": {...}}` holds the overrides of
the service whose rule says `service = "NAME"`, applied last. Object-valued settings (`env`,
`secret_env`, `secret_files`, `service_annotations`, `revision_annotations`) merge key by key:
attribute < top level < services entry, and a key set to null removes it (`"env": {"API_KEY":
null}` drops the attribute's API_KEY, e.g. to move it to secret_env). A top-level `"service"` or
`"image_repository"` is refused: it would rename every service that shares the file, or push
them all to one repository.

`--check_service_keys` checks environment files shared by the services named with `--service`
(every service of a repository's push-all): each file as the manifest build would (types, keys),
and every `services` key against those names, so that a typo (`"pingg"`) fails instead of
applying to no service. It writes STAMP when all is well (a Bazel validation action's output).

The digest comes from the image build, so the manifest names exactly the image that
`//deploy:push` uploads. Settings of the wrong type, and settings Cloud Run would refuse, fail the
build here with every problem listed at once, one line each: an environment file is hand-written
JSON, so its types are checked as strictly as Bazel checks the rule's attributes.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import posixpath
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
# Cloud Run's CPU limits page: at least 0.08 vCPU; below 1 vCPU, memory above 512 MiB needs 0.5
# vCPU and above 1 GiB needs 1 vCPU, concurrency must be 1, billing request-based (CPU not always
# allocated) and the execution environment gen1.
MIN_MILLICORES = 80
# Direct VPC egress (run.googleapis.com/vpc-access-egress); Cloud Run's default is
# private-ranges-only (VpcAccess.egress in the Admin API).
VPC_EGRESS = {"all-traffic", "private-ranges-only"}
DEFAULT_VPC_EGRESS = "private-ranges-only"
# Compute Engine resource names (RFC 1035, at most 63), alone or as the resource path.
_GCE_NAME = r"[a-z]([-a-z0-9]{0,61}[a-z0-9])?"
NETWORK = re.compile(rf"({_GCE_NAME}|projects/[-a-z0-9.:]+/global/networks/{_GCE_NAME})")
SUBNETWORK = re.compile(
    rf"({_GCE_NAME}|projects/[-a-z0-9.:]+/regions/[a-z0-9-]+/subnetworks/{_GCE_NAME})"
)
# Secret Manager: a secret ID is at most 255 letters, digits, `-` and `_`; Cloud Run takes a
# version number or `latest` (SecretKeySelector.key, KeyToPath.key). A secret of another project
# needs an alias in the run.googleapis.com/secrets annotation (set it in revision_annotations)
# and the alias as the secret name here.
SECRET_REFERENCE = re.compile(r"(?P<secret>[A-Za-z0-9_-]{1,255}):(?P<version>latest|[1-9][0-9]*)")
# Cloud Run refuses secret mounts at /dev, /proc and /sys and below (Configure secrets,
# Limitations). A mount hides whatever the image has in that directory, so the kit also refuses
# the directories its images need: the root, what the programs run from (the app layer's /app,
# Debian's /usr and its /bin, /lib, /sbin links, and below), and the system directories themselves.
SECRET_MOUNT_FORBIDDEN_TREES = ("/dev", "/proc", "/sys")
SECRET_MOUNT_IMAGE_TREES = ("/app", "/usr", "/bin", "/lib", "/lib64", "/sbin", "/etc/ssl")
SECRET_MOUNT_IMAGE_DIRECTORIES = ("/", "/etc", "/home", "/root", "/run", "/tmp", "/var")
# Kubernetes annotation keys: an optional DNS-subdomain prefix and `/`, then a name of at most 63
# characters (Kubernetes "Annotations: syntax and character set"; Cloud Run's ObjectMeta).
ANNOTATION_KEY = re.compile(
    r"((?P<prefix>[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*)/)?"
    r"[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?"
)
# Annotations the kit writes from its own settings: extra annotations may not set them, so an
# environment cannot override a setting behind the kit's back. Value: the setting to use instead.
KIT_ANNOTATIONS = {
    "run.googleapis.com/ingress": "ingress",
    "run.googleapis.com/custom-audiences": "custom_audiences",
    "autoscaling.knative.dev/minScale": "min_scale",
    "autoscaling.knative.dev/maxScale": "max_scale",
    "run.googleapis.com/startup-cpu-boost": "startup_cpu_boost",
    "run.googleapis.com/execution-environment": "execution_environment",
    "run.googleapis.com/cpu-throttling": "cpu_always_allocated",
    "run.googleapis.com/sessionAffinity": "session_affinity",
    "run.googleapis.com/network-interfaces": "vpc_network and vpc_subnetwork",
    "run.googleapis.com/vpc-access-egress": "vpc_egress",
}
VPC_CONNECTOR_ANNOTATION = "run.googleapis.com/vpc-access-connector"


@dataclasses.dataclass(frozen=True)
class Settings:
    """One service's settings; field names are the cloud_run_manifest rule's attributes.

    No defaults here: the rule passes every attribute, and its attributes' defaults are the
    only ones.
    """

    service: str
    project: str
    region: str
    repository: str
    image_repository: str
    port: int
    service_account: str
    container_concurrency: int
    timeout_seconds: int
    cpu: str
    memory: str
    min_scale: int
    max_scale: int
    startup_cpu_boost: bool
    cpu_always_allocated: bool
    execution_environment: str
    ingress: str
    custom_audiences: tuple[str, ...]
    session_affinity: bool
    env: dict[str, str]
    secret_env: dict[str, str]
    secret_files: dict[str, str]
    vpc_network: str
    vpc_subnetwork: str
    vpc_egress: str
    service_annotations: dict[str, str]
    revision_annotations: dict[str, str]
    startup_probe_period_seconds: int
    startup_probe_failure_threshold: int
    liveness_probe_period_seconds: int
    liveness_probe_failure_threshold: int
    probe_timeout_seconds: int

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
# In an environment file an object setting's key may be null: the key is removed.
_ENVIRONMENT_DICT_KIND = (
    "an object of strings (or null, to remove a key)",
    lambda v: (
        isinstance(v, dict) and all(item is None or isinstance(item, str) for item in v.values())
    ),
)
# Settings merged key by key (attribute < environment top level < services entry).
MERGED_SETTINGS = frozenset(
    name for name, kind in typing.get_type_hints(Settings).items() if kind == dict[str, str]
)
SERVICES_KEY = "services"
# Settings of one service only: at an environment file's top level they would apply to every
# service that shares the file. Value: what that would do, and what to do instead.
PER_SERVICE_SETTINGS = {
    "service": ("rename every service that uses the file", "rename one service"),
    "image_repository": (
        "send every service that uses the file to one image repository",
        "set it per service",
    ),
}
SERVICE_NAME = re.compile(r"[a-z]([-a-z0-9]{0,47}[a-z0-9])?")


def type_problems(
    values: dict, source: str, extra_known: tuple[str, ...] = (), environment: bool = True
) -> list[str]:
    """Keys of `values` that are not settings, and values not of their setting's type.

    `environment`: values from an environment file, whose object settings may hold nulls.
    """
    types = typing.get_type_hints(Settings)
    problems = []
    for key, value in values.items():
        if key in extra_known:
            continue
        if key not in types:
            known = ", ".join(sorted([*types, *extra_known]))
            problems.append(f"unknown setting {key!r} in the {source}; known: {known}")
            continue
        kind, accepts = _KINDS[types[key]]
        if environment and key in MERGED_SETTINGS:
            kind, accepts = _ENVIRONMENT_DICT_KIND
        if not accepts(value):
            problems.append(f"{key} in the {source} is {json.dumps(value)}: not {kind}")
    return problems


def environment_layers(environment: object, service: object) -> tuple[list[dict], list[str]]:
    """The environment's overrides for `service`, in the order they apply, and its problems.

    Every services entry is checked, not only this service's: the file is shared, and a mistake
    in any entry should fail every build that reads it, not only that service's deploy.
    """
    if environment is None:
        return [], []
    if not isinstance(environment, dict):
        return [], ["the environment file is not a JSON object"]
    top = {k: v for k, v in environment.items() if k != SERVICES_KEY}
    problems = []
    example = service if isinstance(service, str) else "NAME"
    for key, (effect, instead) in PER_SERVICE_SETTINGS.items():
        if key in top:
            problems.append(
                f"the environment file sets {key} {json.dumps(top[key])} at the top level, "
                f"which would {effect}; {instead} with "
                f'"services": {{"{example}": {{"{key}": ...}}}}'
            )
            del top[key]
    problems += type_problems(top, "environment file", extra_known=(SERVICES_KEY,))
    entries = environment.get(SERVICES_KEY, {})
    if not isinstance(entries, dict):
        problems.append(
            f"{SERVICES_KEY} in the environment file is {json.dumps(entries)}: not an object "
            "of service names to settings"
        )
        entries = {}
    for name, entry in entries.items():
        source = f"environment file's {SERVICES_KEY}.{name}"
        if SERVICE_NAME.fullmatch(name) is None:
            problems.append(
                f"{SERVICES_KEY} key {name!r} in the environment file is not a "
                "Cloud Run service name"
            )
        if not isinstance(entry, dict):
            problems.append(
                f"{SERVICES_KEY}.{name} in the environment file is "
                f"{json.dumps(entry)}: not an object of settings"
            )
            continue
        problems += type_problems(entry, source)
    layers = [top]
    if isinstance(service, str) and isinstance(entries.get(service), dict):
        layers.append(entries[service])
    return layers, problems


def load_settings(settings: dict, environment: object = None) -> Settings:
    """Settings from the rule's attributes, with an environment's overrides applied."""
    layers, environment_problems = environment_layers(environment, settings.get("service"))
    problems = type_problems(settings, "attributes", environment=False) + environment_problems
    missing = sorted(set(typing.get_type_hints(Settings)) - set(settings))
    if missing:
        problems.append(f"the attributes lack {', '.join(missing)} (the rule passes every one)")
    if problems:
        raise SettingsError(problems)
    merged = dict(settings)
    for layer in layers:
        for key, value in layer.items():
            if key in MERGED_SETTINGS:
                value = {k: v for k, v in {**merged[key], **value}.items() if v is not None}
            merged[key] = value
    merged["custom_audiences"] = tuple(merged["custom_audiences"])
    result = Settings(**merged)
    if problems := settings_problems(result):
        raise SettingsError(problems)
    return result


def _cpu_count(cpu: str) -> float:
    """CPUs of a valid cpu setting: `"2"` -> 2.0, `"500m"` (millicores) -> 0.5."""
    return int(cpu[:-1]) / 1000 if cpu.endswith("m") else float(cpu)


def _memory_mib(memory: str) -> int:
    """MiB of a valid memory setting: `"512Mi"` -> 512, `"2Gi"` -> 2048."""
    number, unit = int(memory[:-2]), memory[-2:]
    return number * 1024 if unit == "Gi" else number


def _within(path: str, tree: str) -> bool:
    return path == tree or path.startswith(tree.rstrip("/") + "/")


def secret_mounts(s: Settings) -> dict[str, tuple[str, list[tuple[str, str]]]]:
    """secret_files by mount directory: the secret and its (file name, version) items.

    Only for settings whose secret_files passed settings_problems.
    """
    mounts: dict[str, tuple[str, list[tuple[str, str]]]] = {}
    for path, reference in sorted(s.secret_files.items()):
        directory, file_name = posixpath.split(path)
        match = SECRET_REFERENCE.fullmatch(reference)
        assert match is not None, reference
        mounts.setdefault(directory, (match["secret"], []))[1].append((file_name, match["version"]))
    return mounts


def _secret_file_problems(s: Settings) -> list[str]:
    problems = []
    secrets_by_directory: dict[str, set[str]] = {}
    for path, reference in sorted(s.secret_files.items()):
        match = SECRET_REFERENCE.fullmatch(reference)
        if match is None:
            problems.append(
                f"secret_files {path}: {reference!r} is not SECRET:VERSION (a Secret Manager "
                "secret ID, and a version number or latest)"
            )
        directory, file_name = posixpath.split(path)
        if (
            not path.startswith("/")
            or posixpath.normpath(path) != path
            or ":" in path
            or file_name in ("", ".", "..")
        ):
            problems.append(
                f"secret_files {path!r}: an absolute path, directory and file name, such as "
                "/secrets/db/password (no '..', '//', ':' or trailing '/')"
            )
            continue
        if forbidden := [t for t in SECRET_MOUNT_FORBIDDEN_TREES if _within(directory, t)]:
            problems.append(
                f"secret_files {path}: Cloud Run does not mount secrets at {forbidden[0]} or below"
            )
            continue
        hidden = directory in SECRET_MOUNT_IMAGE_DIRECTORIES or any(
            _within(directory, tree) for tree in SECRET_MOUNT_IMAGE_TREES
        )
        if hidden:
            problems.append(
                f"secret_files {path}: mounting at {directory} would hide the image's own files "
                "there; mount in a directory of its own, such as /secrets/NAME"
            )
            continue
        if match is not None:
            secrets_by_directory.setdefault(directory, set()).add(match["secret"])
    for directory, secrets in sorted(secrets_by_directory.items()):
        if len(secrets) > 1:
            problems.append(
                f"secret_files: {directory} would hold secrets {', '.join(sorted(secrets))}; "
                "Cloud Run mounts one secret per directory"
            )
    return problems


def _annotation_problems(s: Settings) -> list[str]:
    problems = []
    for setting in ("service_annotations", "revision_annotations"):
        for key in sorted(getattr(s, setting)):
            match = ANNOTATION_KEY.fullmatch(key)
            if match is None or len(match["prefix"] or "") > 253:
                problems.append(f"{setting} key {key!r} is not an annotation key (PREFIX/NAME)")
            elif key in KIT_ANNOTATIONS:
                problems.append(
                    f"{setting} {key} is written by the kit; set {KIT_ANNOTATIONS[key]} instead"
                )
    return problems


def settings_problems(s: Settings) -> list[str]:
    """Everything Cloud Run would reject about these settings."""
    problems = []

    def check(ok: bool, problem: str) -> None:
        if not ok:
            problems.append(problem)

    check(
        SERVICE_NAME.fullmatch(s.service) is not None,
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
    if cpu_ok:
        cpu = _cpu_count(s.cpu)
        check(cpu * 1000 >= MIN_MILLICORES, f"cpu {s.cpu}: at least {MIN_MILLICORES}m")
        check(
            cpu >= 1 or s.container_concurrency == 1,
            f"cpu {s.cpu} below 1 needs container_concurrency 1",
        )
        check(
            cpu >= 1 or not s.cpu_always_allocated,
            f"cpu {s.cpu} below 1 cannot be always allocated (cpu_always_allocated)",
        )
        check(
            cpu >= 1 or s.execution_environment == "gen1",
            f"cpu {s.cpu} below 1 needs execution_environment gen1",
        )
    if cpu_ok and memory_ok:
        cpu, mib = _cpu_count(s.cpu), _memory_mib(s.memory)
        check(128 <= mib <= 32 * 1024, f"memory {s.memory}: 128Mi to 32Gi")
        check(
            s.execution_environment != "gen2" or mib >= GEN2_MIN_MEMORY_MIB,
            f"memory {s.memory}: execution environment gen2 needs at least {GEN2_MIN_MEMORY_MIB}Mi",
        )
        for above_mib, least_cpu in ((512, 0.5), (1024, 1)):
            check(
                mib <= above_mib or cpu >= least_cpu,
                f"memory {s.memory} above {above_mib}Mi needs at least {least_cpu:g} cpu",
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
    for setting in ("env", "secret_env"):
        for name, value in sorted(getattr(s, setting).items()):
            check(
                re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name) is not None,
                f"{setting} name {name!r} is not a valid variable name",
            )
            check(name not in RESERVED_ENV, f"{setting} {name} is set by Cloud Run itself")
            if setting == "secret_env":
                check(name not in s.env, f"{name} is in both env and secret_env")
                check(
                    SECRET_REFERENCE.fullmatch(value) is not None,
                    f"secret_env {name}: {value!r} is not SECRET:VERSION (a Secret Manager "
                    "secret ID, and a version number or latest)",
                )
    problems.extend(_secret_file_problems(s))
    check(
        not s.vpc_network or NETWORK.fullmatch(s.vpc_network) is not None,
        f"vpc_network {s.vpc_network!r} is not a VPC network name or "
        "projects/PROJECT/global/networks/NAME",
    )
    check(
        not s.vpc_subnetwork or SUBNETWORK.fullmatch(s.vpc_subnetwork) is not None,
        f"vpc_subnetwork {s.vpc_subnetwork!r} is not a subnet name or "
        "projects/PROJECT/regions/REGION/subnetworks/NAME",
    )
    check(
        not s.vpc_egress or s.vpc_egress in VPC_EGRESS,
        f"vpc_egress {s.vpc_egress!r}: one of {sorted(VPC_EGRESS)}",
    )
    check(
        not s.vpc_egress
        or bool(s.vpc_network or s.vpc_subnetwork)
        or VPC_CONNECTOR_ANNOTATION in s.revision_annotations,
        f"vpc_egress {s.vpc_egress} needs vpc_network or vpc_subnetwork (or a "
        f"{VPC_CONNECTOR_ANNOTATION} revision annotation)",
    )
    problems.extend(_annotation_problems(s))
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


def _env(s: Settings) -> list[dict]:
    entries: list[dict] = [{"name": k, "value": v} for k, v in s.env.items()]
    for name, reference in s.secret_env.items():
        secret, version = reference.rsplit(":", 1)
        entries.append(
            {"name": name, "valueFrom": {"secretKeyRef": {"key": version, "name": secret}}}
        )
    return sorted(entries, key=lambda entry: entry["name"])


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
        # Written either way, so `services replace` also undoes a console change: "true" is CPU
        # only during requests (request-based billing), "false" CPU always allocated.
        "run.googleapis.com/cpu-throttling": str(not s.cpu_always_allocated).lower(),
    }
    if s.session_affinity:
        # Left out when off, as gcloud does (--no-session-affinity deletes it).
        revision_annotations["run.googleapis.com/sessionAffinity"] = "true"
    if s.vpc_network or s.vpc_subnetwork:
        interface = {"network": s.vpc_network, "subnetwork": s.vpc_subnetwork}
        revision_annotations["run.googleapis.com/network-interfaces"] = json.dumps(
            [{k: v for k, v in interface.items() if v}], separators=(",", ":")
        )
    if s.vpc_network or s.vpc_subnetwork or s.vpc_egress:
        revision_annotations["run.googleapis.com/vpc-access-egress"] = (
            s.vpc_egress or DEFAULT_VPC_EGRESS
        )
    # Extra annotations last; settings_problems refused any key the kit writes.
    service_annotations |= dict(sorted(s.service_annotations.items()))
    revision_annotations |= dict(sorted(s.revision_annotations.items()))
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
    if s.env or s.secret_env:
        container["env"] = _env(s)
    volumes = []
    if s.secret_files:
        container["volumeMounts"] = []
        for number, (directory, (secret, items)) in enumerate(secret_mounts(s).items(), 1):
            name = f"secret-{number}"
            container["volumeMounts"].append({"name": name, "mountPath": directory})
            volumes.append(
                {
                    "name": name,
                    "secret": {
                        "secretName": secret,
                        "items": [{"key": version, "path": file} for file, version in items],
                    },
                }
            )
    revision_spec: dict = {
        "containerConcurrency": s.container_concurrency,
        "timeoutSeconds": s.timeout_seconds,
    }
    if s.service_account:
        revision_spec["serviceAccountName"] = s.service_account
    revision_spec["containers"] = [container]
    if volumes:
        revision_spec["volumes"] = volumes
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
    return "# Deploy this file with: gcloud run services replace FILE\n" + yaml.safe_dump(
        document, sort_keys=False, default_flow_style=False
    )


def read_environment(path: Path) -> object:
    """An environment file's JSON; SettingsError when it is not JSON."""
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        raise SettingsError([f"the environment file is not JSON: {error}"]) from None


def service_key_problems(environment: object, services: list[str]) -> list[str]:
    """Problems of an environment file shared by `services` (their Cloud Run names).

    What a manifest build would find in it for any service, and `services` keys that name none
    of `services`: such an entry would apply to no service, silently.
    """
    _, problems = environment_layers(environment, None)
    if problems or not isinstance(environment, dict):
        return problems
    known = ", ".join(sorted(services))
    return [
        f"{SERVICES_KEY} key {name!r} is not the Cloud Run service name of any service that "
        f"uses this file, so its settings would apply to none; the services: {known}"
        for name in environment.get(SERVICES_KEY, {})
        if name not in services
    ]


def check_service_keys(paths: list[Path], services: list[str], out: Path) -> int:
    """--check_service_keys: every problem of every file, one line each; exit 2 if any."""
    failed = False
    for path in paths:
        try:
            problems = service_key_problems(read_environment(path), services)
        except SettingsError as error:
            problems = error.problems
        for problem in problems:
            print(f"cloud_run_manifest: bad environment {path}: {problem}", file=sys.stderr)
        failed = failed or bool(problems)
    if failed:
        return 2
    out.write_text("".join(f"{path}: services keys of {' '.join(services)}\n" for path in paths))
    return 0


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--settings", type=Path, help="the rule's attributes, JSON")
    parser.add_argument("--environment", type=Path, help="JSON overrides for one environment")
    parser.add_argument("--digest_file", type=Path)
    parser.add_argument("--out", required=True, type=Path)
    parser.add_argument(
        "--check_service_keys",
        nargs="+",
        type=Path,
        metavar="ENVIRONMENT",
        help="instead of a manifest: check these environment files against --service names",
    )
    parser.add_argument(
        "--service",
        action="append",
        default=[],
        help="with --check_service_keys: a Cloud Run service name the files may key (repeat)",
    )
    args = parser.parse_args(argv[1:])
    if args.check_service_keys:
        if not args.service:
            parser.error("--check_service_keys needs the services' names (--service NAME)")
        return check_service_keys(args.check_service_keys, args.service, args.out)
    if args.settings is None or args.digest_file is None:
        parser.error("--settings and --digest_file are required to write a manifest")

    source = f" (environment {args.environment})" if args.environment else ""
    try:
        environment = read_environment(args.environment) if args.environment else None
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
