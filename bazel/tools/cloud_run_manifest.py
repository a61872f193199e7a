"""Writes the Cloud Run service manifest: a Knative `serving.knative.dev/v1` Service, as
`gcloud run services replace` takes it, with the image pinned by digest.

    cloud_run_manifest.py --settings S.json [--environment E.json] --digest_file D --out Y.yaml
    cloud_run_manifest.py --check_service_keys E.json... --service NAME... --out STAMP
    cloud_run_manifest.py --check_collisions E.json... --service_settings S.json... --out STAMP

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

`--check_collisions` refuses two deployments of one Cloud Run service (project, region, name):
each service whose settings are given, in each environment file (environment_collisions.py).

The digest comes from the image build, so the manifest names exactly the image that
`//deploy:push` uploads. Settings of the wrong type, and settings Cloud Run would refuse, fail the
build here with every problem listed at once, one line each: an environment file is hand-written
JSON, so its types are checked as strictly as Bazel checks the rule's attributes.

This file is the CLI and the rendering; the settings, their types and layering are
manifest_settings.py, what Cloud Run accepts of them manifest_rules.py.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import yaml

from bazel.tools.collector_sidecar import (
    APP_CONTAINER,
    collector_env,
    collector_problems,
    collector_revision,
)
from bazel.tools.environment_collisions import collision_problems
from bazel.tools.manifest_rules import AUTH_VERIFY, DEFAULT_VPC_EGRESS, settings_problems
from bazel.tools.manifest_secrets import secret_mounts
from bazel.tools.manifest_settings import (
    Settings,
    SettingsError,
    merged_settings,
    read_environment,
    service_key_problems,
)


def load_settings(settings: dict, environment: object = None) -> Settings:
    """Settings from the rule's attributes, with an environment's overrides applied, checked
    against Cloud Run's rules; SettingsError lists every problem."""
    result = merged_settings(settings, environment)
    if problems := settings_problems(result) + collector_problems(result):
        raise SettingsError(problems)
    return result


def _probe(s: Settings, period: int, threshold: int) -> dict:
    # The health service "" is the server as a whole: SERVING once ready, NOT_SERVING on SIGTERM.
    return {
        "grpc": {"port": s.port, "service": ""},
        "periodSeconds": period,
        "failureThreshold": threshold,
        "timeoutSeconds": s.probe_timeout_seconds,
    }


def _env(s: Settings) -> list[dict]:
    values = s.env | collector_env(s)
    entries: list[dict] = [{"name": k, "value": v} for k, v in values.items()]
    for name, reference in s.secret_env.items():
        secret, version = reference.rsplit(":", 1)
        entries.append(
            {"name": name, "valueFrom": {"secretKeyRef": {"key": version, "name": secret}}}
        )
    return sorted(entries, key=lambda entry: entry["name"])


def _server_args(s: Settings) -> list[str]:
    """The runtime's auth flags: written even for `none`, so that the manifest, not the image,
    says who may call, and a `services replace` undoes a hand edit."""
    args = [f"--auth_mode={s.auth_mode}"]
    if s.auth_mode == AUTH_VERIFY:
        args.append("--audiences=" + ",".join(s.custom_audiences))
    if s.allowed_invokers:
        args.append("--allowed_invokers=" + ",".join(s.allowed_invokers))
    return args


def _service_annotations(s: Settings) -> dict[str, str]:
    """The kit's annotations of the Service: ingress, audiences, public access."""
    service_annotations = {"run.googleapis.com/ingress": s.ingress}
    if s.custom_audiences:
        service_annotations["run.googleapis.com/custom-audiences"] = json.dumps(
            list(s.custom_audiences)
        )
    if s.public:
        # Written only when on: the invoker IAM check is Cloud Run's default.
        service_annotations["run.googleapis.com/invoker-iam-disabled"] = "true"
    return service_annotations


def _revision_annotations(s: Settings) -> dict[str, str]:
    """The kit's annotations of each revision: scaling, CPU, sessions, VPC egress."""
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
    return revision_annotations


def _app_container(s: Settings, image: str) -> tuple[dict, list[dict]]:
    """The service's container, and the volumes that its secret files are mounted from."""
    container: dict = {
        "image": image,
        # Appended to the image's entrypoint (the server), in place of its Cmd.
        "args": _server_args(s),
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
    if s.env or s.secret_env or collector_env(s):
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
    return container, volumes


def render(s: Settings, image: str) -> dict:
    """The Service document for `image` (a `REPOSITORY@sha256:...` reference)."""
    service_annotations = _service_annotations(s)
    revision_annotations = _revision_annotations(s)
    container, volumes = _app_container(s, image)
    revision_spec: dict = {
        "containerConcurrency": s.container_concurrency,
        "timeoutSeconds": s.timeout_seconds,
    }
    if s.service_account:
        revision_spec["serviceAccountName"] = s.service_account
    revision_spec["containers"] = [container]
    if s.otel_collector_image:
        # The service's container is the ingress one (it alone has the port); the dependency
        # annotation names both containers.
        revision_spec["containers"] = [{"name": APP_CONTAINER, **container}]
        sidecar, volume, dependency = collector_revision(s, container["startupProbe"])
        revision_spec["containers"].append(sidecar)
        volumes.append(volume)
        revision_annotations |= dependency
    # Extra annotations last; settings_problems refused any key the kit writes.
    service_annotations |= dict(sorted(s.service_annotations.items()))
    revision_annotations |= dict(sorted(s.revision_annotations.items()))
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
    """The service's container, which names the image: the first (a sidecar comes after it)."""
    return document["spec"]["template"]["spec"]["containers"][0]


def dump(document: dict) -> str:
    return "# Deploy this file with: gcloud run services replace FILE\n" + yaml.safe_dump(
        document, sort_keys=False, default_flow_style=False
    )


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


def check_collisions(paths: list[Path], settings: list[Path], out: Path) -> int:
    """--check_collisions: one line per Cloud Run service two deployments share; exit 2 if any."""
    services = [json.loads(path.read_text()) for path in settings]
    if problems := collision_problems(services, paths):
        for problem in problems:
            print(f"cloud_run_manifest: {problem}", file=sys.stderr)
        return 2
    names = " ".join(sorted(service["service"] for service in services))
    out.write_text("".join(f"{path}: no collision of {names}\n" for path in paths))
    return 0


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--settings", type=Path, help="the rule's attributes, JSON")
    parser.add_argument("--environment", type=Path, help="JSON overrides for one environment")
    parser.add_argument("--digest_file", type=Path)
    parser.add_argument("--out", required=True, type=Path)
    parser.add_argument(
        "--target_out",
        type=Path,
        help="also write where the service runs, JSON {service, project, region} (a release)",
    )
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
    parser.add_argument(
        "--check_collisions",
        nargs="+",
        type=Path,
        metavar="ENVIRONMENT",
        help="instead of a manifest: check that no two of these environments deploy one of "
        "the --service_settings services to the same Cloud Run service",
    )
    parser.add_argument(
        "--service_settings",
        action="append",
        default=[],
        type=Path,
        help="with --check_collisions: a service's settings, as --settings takes them (repeat)",
    )
    args = parser.parse_args(argv[1:])
    if args.check_collisions:
        if not args.service_settings:
            parser.error("--check_collisions needs the services' settings (--service_settings)")
        return check_collisions(args.check_collisions, args.service_settings, args.out)
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
    if args.target_out:
        where = {
            "service": settings.service,
            "project": settings.project,
            "region": settings.region,
        }
        args.target_out.write_text(json.dumps(where, sort_keys=True) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
