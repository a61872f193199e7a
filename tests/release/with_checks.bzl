"""with_checks: a service as it is built, with other smoke checks, for a release test of a
failing check that builds no second image. The checks are given as the build hands them to the
release tool (every field set), so this fixture skips the validation cloud_run_service makes."""

load("//bazel:defs.bzl", "CloudRunServiceInfo")

_FIELDS = [
    "service",
    "image",
    "manifest",
    "sbom",
    "remote_tags",
    "stamped_tags",
    "environments",
    "environment",
    "settings",
]

def _with_checks_impl(ctx):
    info = ctx.attr.service[CloudRunServiceInfo]
    fields = {field: getattr(info, field) for field in _FIELDS}
    return [CloudRunServiceInfo(
        smoke_checks = [json.decode(check) for check in ctx.attr.smoke_checks],
        **fields
    )]

with_checks = rule(
    implementation = _with_checks_impl,
    doc = "`service`'s CloudRunServiceInfo with `smoke_checks` instead of its own.",
    attrs = {
        "service": attr.label(
            mandatory = True,
            providers = [CloudRunServiceInfo],
            doc = "A cloud_run_service.",
        ),
        "smoke_checks": attr.string_list(
            doc = "JSON objects with method, request, code and response, all given.",
        ),
    },
)
