"""deploy_environment: the `--//deploy:environment=NAME` flag that picks a manifest's overrides."""

DeployEnvironmentInfo = provider(
    doc = "The environment a build deploys to; empty for the rule's own settings.",
    fields = {"name": "Environment name, matching an environment file's base name."},
)

def _deploy_environment_impl(ctx):
    return [DeployEnvironmentInfo(name = ctx.build_setting_value)]

deploy_environment = rule(
    implementation = _deploy_environment_impl,
    build_setting = config.string(flag = True),
    doc = """A string flag naming the environment to deploy to. `cloud_run_manifest` applies the
environment file of that name (`staging` -> `staging.json`) over its attributes:
`bazel build //deploy:manifest --//deploy:environment=staging`.""",
)
