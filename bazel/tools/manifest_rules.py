"""What Cloud Run accepts of a service's settings: names, resource limits, probes, secrets, VPC
egress and annotations, every problem listed at once (settings_problems), one function a topic
(secret files in manifest_secrets.py).

Apart from the settings' types and layering (manifest_settings.py) and from the rendering
(cloud_run_manifest.py): these rules follow Cloud Run's documented limits, which change on
their own schedule, and the comments name the Cloud Run pages they come from.
"""

from __future__ import annotations

import re

from bazel.tools.manifest_secrets import SECRET_REFERENCE, secret_file_problems
from bazel.tools.manifest_settings import SERVICE_NAME, Settings

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
    "run.googleapis.com/invoker-iam-disabled": "public",
    "run.googleapis.com/container-dependencies": "otel_collector_image",
}
VPC_CONNECTOR_ANNOTATION = "run.googleapis.com/vpc-access-connector"
# The runtime's --auth_mode values (python/runtime/invoker_auth.py MODES; a test holds them equal).
AUTH_NONE, AUTH_CLOUD_RUN, AUTH_VERIFY = "none", "cloud-run", "verify"
AUTH_MODES = (AUTH_NONE, AUTH_CLOUD_RUN, AUTH_VERIFY)
# An invoker as a token's `email` claim names it: a user or a service account. No comma or
# double quote: the container reads the list as one comma-separated flag, quotes included (CSV).
INVOKER_EMAIL = re.compile(r'[^@\s,"]+@[^@\s,"]+\.[^@\s,"]+')


def _cpu_count(cpu: str) -> float:
    """CPUs of a valid cpu setting: `"2"` -> 2.0, `"500m"` (millicores) -> 0.5."""
    return int(cpu[:-1]) / 1000 if cpu.endswith("m") else float(cpu)


def _memory_mib(memory: str) -> int:
    """MiB of a valid memory setting: `"512Mi"` -> 512, `"2Gi"` -> 2048."""
    number, unit = int(memory[:-2]), memory[-2:]
    return number * 1024 if unit == "Gi" else number


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


def _auth_problems(s: Settings) -> list[str]:
    """auth_mode, allowed_invokers and public: no identity that nobody verified."""
    if s.auth_mode not in AUTH_MODES:
        return [f"auth_mode {s.auth_mode!r}: one of {', '.join(AUTH_MODES)}"]
    problems = []
    if s.auth_mode == AUTH_CLOUD_RUN and s.public:
        # Cloud Run verifies a token only in its invoker IAM check; public turns that off, and
        # the header reaches the container as the caller wrote it.
        problems.append(
            "auth_mode cloud-run trusts the caller Cloud Run's invoker IAM check verified, but "
            "public turns that check off, so any caller could claim to be anyone; use auth_mode "
            "verify (tokens checked in the container) or drop public"
        )
    if s.auth_mode == AUTH_VERIFY and not s.custom_audiences:
        problems.append(
            "auth_mode verify checks each token's audience against custom_audiences: set the "
            "service's URL (https://SERVICE-PROJECT_NUMBER.REGION.run.app) or a custom audience"
        )
    if s.allowed_invokers and s.auth_mode == AUTH_NONE:
        problems.append(
            "allowed_invokers needs auth_mode cloud-run or verify: with none, no caller is known"
        )
    for invoker in s.allowed_invokers:
        if INVOKER_EMAIL.fullmatch(invoker) is None:
            problems.append(f"allowed_invokers {invoker!r} is not an email address")
    if s.auth_mode == AUTH_VERIFY:
        # The container takes them as one comma-separated --audiences flag, read as CSV: a
        # double quote joins or breaks entries (the server would refuse to start).
        for audience in s.custom_audiences:
            if "," in audience or '"' in audience:
                problems.append(
                    f"custom_audiences {audience!r}: no commas or double quotes with auth_mode "
                    "verify"
                )
    return problems


class Problems(list[str]):
    """The problems found so far; check() adds one when its condition does not hold."""

    def check(self, ok: bool, problem: str) -> None:
        if not ok:
            self.append(problem)


def _identity_problems(s: Settings) -> list[str]:
    """The service's name, where its image lives, its port and its account."""
    problems = Problems()
    check = problems.check

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
    return problems


def _request_problems(s: Settings) -> list[str]:
    """Concurrency and the request timeout."""
    problems = Problems()
    check = problems.check

    check(
        1 <= s.container_concurrency <= 1000,
        f"container_concurrency {s.container_concurrency}: 1 to 1000",
    )
    check(1 <= s.timeout_seconds <= 3600, f"timeout_seconds {s.timeout_seconds}: 1 to 3600")
    return problems


def _resource_problems(s: Settings) -> list[str]:
    """CPU and memory, and what Cloud Run requires of them together."""
    problems = Problems()
    check = problems.check

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
    return problems


def _scaling_problems(s: Settings) -> list[str]:
    """Instances, execution environment, ingress and audiences."""
    problems = Problems()
    check = problems.check

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
    return problems


def _env_problems(s: Settings) -> list[str]:
    """Plain and secret environment variables."""
    problems = Problems()
    check = problems.check

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
    return problems


def _vpc_problems(s: Settings) -> list[str]:
    """Direct VPC egress: the network, the subnet and what goes through them."""
    problems = Problems()
    check = problems.check

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
    return problems


def _probe_problems(s: Settings) -> list[str]:
    """The startup and liveness probes, within Cloud Run's budget."""
    problems = Problems()
    check = problems.check

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


def settings_problems(s: Settings) -> list[str]:
    """Everything Cloud Run would reject about these settings, in the order of the settings."""
    return [
        problem
        for topic in (
            _identity_problems,
            _request_problems,
            _resource_problems,
            _scaling_problems,
            _env_problems,
            secret_file_problems,
            _vpc_problems,
            _annotation_problems,
            _auth_problems,
            _probe_problems,
        )
        for problem in topic(s)
    ]
