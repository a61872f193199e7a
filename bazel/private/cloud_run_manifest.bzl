"""cloud_run_manifest: a Cloud Run service.yaml that names an oci_image by digest."""

load(":deploy_environment.bzl", "DeployEnvironmentInfo")
load(":oci_image_info.bzl", "OciImageInfo")

CloudRunManifestInfo = provider(
    doc = "What a cloud_run_manifest read besides its attributes, for the services that use it.",
    fields = {
        "environments": "list of File: its environment files (`NAME.json`), every one, " +
                        "whichever `--environment` picked",
        "environment": "str: the environment built (`--environment`), empty for none; the " +
                       "push moves this environment's own tag",
        "settings": "File: the JSON of every attribute the generator read (output group " +
                    "`settings`), for the checks that read every service's",
    },
)

def _cloud_run_manifest_impl(ctx):
    out = ctx.actions.declare_file(ctx.attr.out)
    digest = ctx.attr.image[OciImageInfo].digest

    environment_name = ctx.attr.environment_flag[DeployEnvironmentInfo].name
    environment = None
    if environment_name:
        by_name = {f.basename.removesuffix(".json"): f for f in ctx.files.environments}
        if environment_name not in by_name:
            fail("no environment file {}.json among {}'s environments (have: {})".format(
                environment_name,
                ctx.label,
                ", ".join(sorted(by_name)) or "none",
            ))
        environment = by_name[environment_name]

    settings = ctx.actions.declare_file(ctx.label.name + ".settings.json")
    ctx.actions.write(settings, json.encode({
        name: getattr(ctx.attr, name)
        for name in _SETTINGS
    }))
    args = ctx.actions.args()
    args.add("--settings", settings)
    args.add("--digest_file", digest)
    args.add("--out", out)
    inputs = [settings, digest]
    if environment:
        args.add("--environment", environment)
        inputs.append(environment)
    ctx.actions.run(
        executable = ctx.executable._tool,
        arguments = [args],
        inputs = inputs,
        outputs = [out],
        mnemonic = "CloudRunManifest",
        progress_message = "Writing Cloud Run manifest %{label}",
    )
    return [
        DefaultInfo(files = depset([out])),
        CloudRunManifestInfo(
            environments = ctx.files.environments,
            environment = environment_name,
            settings = settings,
        ),
        OutputGroupInfo(
            # The settings the generator read: every attribute, defaults included.
            settings = depset([settings]),
            _validation = depset(check_collisions(
                ctx,
                ctx.executable._tool,
                ctx.files.environments,
                [settings],
            )),
        ),
    ]

def check_collisions(ctx, tool, environments, settings):
    """Declares the check that no two environments deploy a service to one Cloud Run service.

    A validation action: it fails when two of `environments` would deploy one of the services
    (their `settings` files) to the same Cloud Run service (project, region, name).

    Args:
      ctx: the rule's context.
      tool: the manifest generator's executable.
      environments: list of File, the environment files.
      settings: list of File, the services' settings (cloud_run_manifest's output group).

    Returns:
      A list of the action's output (empty below two environments: nothing to collide).
    """
    if len(environments) < 2:
        return []
    out = ctx.actions.declare_file(ctx.label.name + ".collisions.checked")
    args = ctx.actions.args()
    args.add_all("--check_collisions", environments)
    args.add_all(settings, before_each = "--service_settings")
    args.add("--out", out)
    ctx.actions.run(
        executable = tool,
        arguments = [args],
        inputs = environments + settings,
        outputs = [out],
        mnemonic = "CloudRunCollisionCheck",
        progress_message = "Checking that no two environments share a Cloud Run service of %{label}",
    )
    return [out]

# The service's settings: the generator's Settings fields, also the keys of environment files.
_SETTINGS = {
    "service": attr.string(mandatory = True, doc = "Cloud Run service name; also the image name."),
    "project": attr.string(doc = "Google Cloud project ID that holds the repository."),
    "region": attr.string(doc = "Region of the service and of its Artifact Registry repository."),
    "repository": attr.string(doc = "Artifact Registry Docker repository name."),
    "image_repository": attr.string(
        doc = "The whole image repository, e.g. `gcr.io/p/ping`, instead of the one made " +
              "from region, project, repository and service.",
    ),
    "port": attr.int(default = 8080, doc = "containerPort; Cloud Run passes it as $PORT."),
    "service_account": attr.string(doc = "Email the revision runs as; empty: the project's default."),
    "container_concurrency": attr.int(
        default = 80,
        doc = "Concurrent requests per instance; each gRPC stream counts as one.",
    ),
    "timeout_seconds": attr.int(
        default = 3600,
        doc = "Longest a request may run. The maximum, so long streams are not cut at 5 min.",
    ),
    "cpu": attr.string(default = "1", doc = "CPU limit: 1, 2, 4, 6, 8, or millicores below 1000m."),
    "memory": attr.string(default = "512Mi", doc = "Memory limit, e.g. 512Mi, 2Gi."),
    "min_scale": attr.int(default = 0, doc = "Instances kept warm (autoscaling.knative.dev/minScale)."),
    "max_scale": attr.int(default = 10, doc = "Instance cap (autoscaling.knative.dev/maxScale)."),
    "startup_cpu_boost": attr.bool(default = True, doc = "Extra CPU while starting."),
    "cpu_always_allocated": attr.bool(
        default = False,
        doc = "CPU for the instance's whole life (instance-based billing), for work between " +
              "requests; default: only while serving requests (run.googleapis.com/cpu-throttling, " +
              "written either way). Needs cpu of at least 1.",
    ),
    "execution_environment": attr.string(default = "gen2", doc = "gen1 or gen2."),
    "ingress": attr.string(
        default = "all",
        doc = "all, internal or internal-and-cloud-load-balancing.",
    ),
    "custom_audiences": attr.string_list(
        doc = "Extra ID-token audiences the service accepts besides its URL.",
    ),
    "auth_mode": attr.string(
        default = "none",
        doc = "Who may call, checked by the kit's runtime and passed to the container as " +
              "`--auth_mode`: `none`; `cloud-run` (trust the identity Cloud Run's invoker IAM " +
              "check verified; refused with `public`, where Cloud Run verifies nothing); " +
              "`verify` (check Google ID tokens in the container against `custom_audiences`). " +
              "docs/auth-modes.md says which fits which setup.",
    ),
    "allowed_invokers": attr.string_list(
        doc = "With auth_mode cloud-run or verify: the caller emails that may call " +
              "(`--allowed_invokers`); empty: any caller with a valid token.",
    ),
    "public": attr.bool(
        default = False,
        doc = "Anyone may call: turns Cloud Run's invoker IAM check off " +
              "(run.googleapis.com/invoker-iam-disabled). Then no token is verified before " +
              "the container, so auth_mode cloud-run is refused; use none or verify.",
    ),
    "session_affinity": attr.bool(
        default = False,
        doc = "Send a client's requests to the same instance when possible " +
              "(run.googleapis.com/sessionAffinity, best effort).",
    ),
    "env": attr.string_dict(doc = "Environment variables of the container."),
    "secret_env": attr.string_dict(
        doc = "Environment variables from Secret Manager: `{\"API_KEY\": \"api-key:3\"}`, " +
              "NAME -> SECRET:VERSION (a version number, or `latest`; read when an instance " +
              "starts, so pin a number). A name may not also be in env.",
    ),
    "secret_files": attr.string_dict(
        doc = "Secrets mounted as files: `{\"/secrets/db/password\": \"db-password:latest\"}`, " +
              "PATH -> SECRET:VERSION. The directory is the mount (one secret per directory; " +
              "the mount hides anything the image has there, so use a new one); the file name " +
              "is the last part. Not at /dev, /proc, /sys, nor over the image's /, /app, /usr.",
    ),
    "vpc_network": attr.string(
        doc = "Direct VPC egress: the VPC network (name or projects/P/global/networks/N).",
    ),
    "vpc_subnetwork": attr.string(
        doc = "Direct VPC egress: the subnet the instances take addresses from (name or " +
              "projects/P/regions/R/subnetworks/S); default: the network's namesake.",
    ),
    "vpc_egress": attr.string(
        doc = "all-traffic or private-ranges-only (Cloud Run's default); needs vpc_network " +
              "or vpc_subnetwork.",
    ),
    "service_annotations": attr.string_dict(
        doc = "Extra Service annotations for what the kit does not model, added last. Keys " +
              "the kit writes (ingress, custom audiences, invoker-iam-disabled) are refused: " +
              "set their attribute.",
    ),
    "revision_annotations": attr.string_dict(
        doc = "Extra revision annotations (spec.template.metadata), e.g. " +
              "run.googleapis.com/cloudsql-instances, added last. Keys the kit writes " +
              "(scaling, CPU, execution environment, session affinity, VPC) are refused: set " +
              "their attribute.",
    ),
    "startup_probe_period_seconds": attr.int(default = 2, doc = "Startup probe interval."),
    "startup_probe_failure_threshold": attr.int(
        default = 30,
        doc = "Failed startup probes before the instance is replaced; period x this <= 240 s.",
    ),
    "liveness_probe_period_seconds": attr.int(default = 10, doc = "Liveness probe interval."),
    "liveness_probe_failure_threshold": attr.int(
        default = 3,
        doc = "Failed liveness probes before the instance is restarted.",
    ),
    "probe_timeout_seconds": attr.int(default = 1, doc = "Each probe's deadline."),
    "otel_collector_image": attr.string(
        doc = "The OpenTelemetry collector to run as a sidecar, pinned (`REPOSITORY@sha256:...` " +
              "or `REPOSITORY:TAG`, not `latest`), e.g. Google's `us-docker.pkg.dev/" +
              "cloud-ops-agents-artifacts/google-cloud-opentelemetry-collector/" +
              "otelcol-google:0.137.0`. Then the service's container (named `app`) gets " +
              "`OTEL_EXPORTER_OTLP_ENDPOINT=http://localhost:4317` and starts once the " +
              "collector (`collector`) answers its startup probe on its health_check port " +
              "13133. Usually set per environment; empty: no sidecar, no telemetry.",
    ),
    "otel_collector_config": attr.string(
        doc = "With otel_collector_image: the collector's config from Secret Manager, " +
              "SECRET:VERSION, mounted as /etc/otelcol-google/config.yaml. It must receive " +
              "OTLP/gRPC on 4317 and enable the health_check extension on 13133 " +
              "(docs/observability.md has one that exports to Cloud Trace and Cloud Monitoring).",
    ),
}

cloud_run_manifest = rule(
    implementation = _cloud_run_manifest_impl,
    doc = """A Knative `serving.knative.dev/v1` Service for `gcloud run services replace`, naming
the image by digest: `REGION-docker.pkg.dev/PROJECT/REPOSITORY/SERVICE@sha256:...`. The port is
named `h2c` (HTTP/2 end to end, which gRPC needs) and gRPC startup and liveness probes ask the
health service `""`. Settings Cloud Run would refuse fail the build, every problem listed.

Per environment: an environment file picked with `--environment=NAME` overrides the
attributes. Its top-level keys (attribute names: `project`, `region`, `repository`, ...) apply
to every service, and `"service_name": "{service}-staging"` names every service from its
`service` attribute; `"services": {"NAME": {...}}` holds the overrides of the service whose
`service` attribute is NAME, applied last (its `service` wins over the template).
Object attributes (env, secret_env, secret_files, service_annotations, revision_annotations)
merge key by key, and a key set to null removes it: `"env": {"API_KEY": null}` drops the
attribute's API_KEY (say, to set it in secret_env instead). A top-level `"service"` or
`"image_repository"` is refused: it would give every service one name, or send every service's
image to one repository; set them per service under `"services"`. The `services` keys themselves
are checked by the push of every service (`cloud_run_push(check_environments = True)`).

With two environments or more, a validation action (run whenever the manifest is built, for
any `--environment`) fails the build when two of them would deploy this service to one Cloud
Run service (same project, region and name), naming both and the service: without it a
staging deploy would replace production's service. docs/environments.md.

Output group `settings`: the JSON of every attribute the generator read.""",
    attrs = _SETTINGS | {
        "image": attr.label(
            mandatory = True,
            providers = [OciImageInfo],
            doc = "The oci_image the service runs.",
        ),
        "out": attr.string(default = "service.yaml", doc = "Output file name."),
        "environments": attr.label_list(
            allow_files = [".json"],
            doc = "Environment files (`NAME.json`), one per environment.",
        ),
        "environment_flag": attr.label(
            default = "//bazel:environment",
            providers = [DeployEnvironmentInfo],
            doc = "The deploy_environment flag that picks an environment file; default the " +
                  "kit's `--environment` (`//bazel:environment`).",
        ),
        "_tool": attr.label(
            default = "//bazel/tools:cloud_run_manifest",
            executable = True,
            cfg = "exec",
            doc = "The manifest generator (bazel/tools/cloud_run_manifest.py).",
        ),
    },
)
