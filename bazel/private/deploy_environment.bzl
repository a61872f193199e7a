"""deploy_environment: the `--environment=NAME` flag that picks a manifest's overrides."""

DeployEnvironmentInfo = provider(
    doc = "The environment a build deploys to; empty for the rule's own settings.",
    fields = {"name": "Environment name, matching an environment file's base name."},
)

def _deploy_environment_impl(ctx):
    return [DeployEnvironmentInfo(name = ctx.build_setting_value)]

deploy_environment = rule(
    implementation = _deploy_environment_impl,
    build_setting = config.string(flag = True),
    doc = """A string flag naming the environment to deploy to. Each `cloud_run_manifest` (so each
`cloud_run_service`) whose `environment_flag` is this flag applies the environment file of that
name among its `environments` (`staging` -> `staging.json`) over its attributes: top-level keys
to every service (`"service_name": "{service}-staging"` names them all), `"services":
{"SERVICE": {...}}` to the one whose `service` is SERVICE. A push under it moves the tag NAME,
not `latest`. In
the kit: `//bazel:environment`, which `.bazelrc` aliases as `--environment`:
`bazel build //deploy:all --environment=staging`, `bazel run //deploy:push --environment=staging`.""",
)
