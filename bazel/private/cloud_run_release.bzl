"""cloud_run_release: `bazel run` releases Cloud Run services (or rolls one back) per environment."""

load(":cloud_run_service_info.bzl", "CloudRunServiceInfo")
load(":oci_push_launcher.bzl", "push_launcher")
load(":runfiles.bzl", "runfiles_path")

def _manifest_for(ctx, info, environment, name):
    """The manifest of `info` under `environment` (a File), and where it runs, as actions."""
    prefix = "{}.release/{}/{}".format(ctx.label.name, name, info.service)
    manifest = ctx.actions.declare_file(prefix + ".yaml")
    target = ctx.actions.declare_file(prefix + ".target.json")
    args = ctx.actions.args()
    args.add("--settings", info.settings)
    args.add("--environment", environment)
    args.add("--digest_file", info.image.digest)
    args.add("--out", manifest)
    args.add("--target_out", target)
    ctx.actions.run(
        executable = ctx.executable._manifest_tool,
        arguments = [args],
        inputs = [info.settings, environment, info.image.digest],
        outputs = [manifest, target],
        mnemonic = "CloudRunReleaseManifest",
        progress_message = "Writing the {} manifest of {} for %{{label}}".format(name, info.service),
    )
    return manifest, target

def _cloud_run_release_impl(ctx):
    environments, runfiles = {}, []
    for service in ctx.attr.services:
        info = service[CloudRunServiceInfo]
        if not info.settings:
            fail("{}: no manifest settings (a hand-written manifest?): cloud_run_release makes each environment's manifest from them".format(service.label))
        runfiles += [info.image.layout] + ([info.sbom] if info.sbom else [])
        for file in info.environments:
            name = file.basename.removesuffix(".json")
            manifest, target = _manifest_for(ctx, info, file, name)
            runfiles += [manifest, target]
            environments.setdefault(name, []).append({
                "service": info.service,
                "image": runfiles_path(info.image.layout),
                "manifest": runfiles_path(manifest),
                "target": runfiles_path(target),
                "sbom": runfiles_path(info.sbom) if info.sbom else None,
                "tags": info.remote_tags,
                "stamped_tags": info.stamped_tags,
                "smoke_checks": info.smoke_checks,
            })
    status_files = []
    if ctx.attr.stamp:
        status_files.append(runfiles_path(ctx.info_file))
        runfiles.append(ctx.info_file)
    spec = ctx.actions.declare_file(ctx.label.name + ".release.json")
    ctx.actions.write(spec, json.encode_indent({
        "push_tool": runfiles_path(ctx.executable._push_tool),
        "repository": ctx.attr.repository,
        "status_files": status_files,
        "environments": environments,
    }))
    args = ["--spec", runfiles_path(spec)] + (["--rollback"] if ctx.attr.rollback else [])
    return [push_launcher(
        ctx,
        args,
        runfiles + [spec],
        [ctx.attr._push_tool[DefaultInfo].default_runfiles],
    )]

cloud_run_release_rule = rule(
    implementation = _cloud_run_release_impl,
    executable = True,
    doc = """`bazel run` it with `-- --environment=ENV` to release every service of `services`
(or those named with `--service`) to Cloud Run through the Admin API v1: push the images and
SBOMs as cloud_run_push does, create each new revision with no traffic under the tag
`candidate` (its name `SERVICE-<hash of the template>`), wait for it to be Ready, smoke-test it
over gRPC at the tag's URL (health SERVING for every service it registers, then each service's
`smoke_checks`), then shift traffic
in steps (`--traffic_steps`, default 10,50,100) with a health check after each, rolling back on
failure. A service whose built revision already serves 100% is a no-op. With `rollback = True`
it instead puts 100% back on the revision tagged `previous` (`-- --environment=ENV
--service=NAME`). The manifests are made here for every environment file of the services,
images pinned by digest, so `--environment` is chosen when it runs, not when it builds. See
docs/release.md and `-- --help`.""",
    attrs = {
        "services": attr.label_list(
            mandatory = True,
            allow_empty = False,
            providers = [CloudRunServiceInfo],
            doc = "The services (`cloud_run_service` targets), released in this order.",
        ),
        "repository": attr.string(
            doc = "Default repository prefix of the push, as cloud_run_push's; " +
                  "`-- --repository PREFIX` overrides it.",
        ),
        "rollback": attr.bool(
            default = False,
            doc = "A rollback target: 100% back on the previous revision of one service.",
        ),
        "stamp": attr.bool(
            default = False,
            doc = "Fill stamped tags from the workspace status; the macro sets it under --stamp.",
        ),
        "_launcher": attr.label(
            default = ":oci_push_launcher.sh",
            allow_single_file = True,
            doc = "Template of the executable: runs `_tool` in the runfiles with the rule's " +
                  "arguments, then the user's.",
        ),
        "_tool": attr.label(
            default = "//bazel/tools/release",
            executable = True,
            cfg = "target",
            doc = "The release tool (bazel/tools/release).",
        ),
        "_push_tool": attr.label(
            default = "//bazel/tools/push",
            executable = True,
            cfg = "target",
            doc = "The registry client that pushes the images (bazel/tools/push).",
        ),
        "_manifest_tool": attr.label(
            default = "//bazel/tools:cloud_run_manifest",
            executable = True,
            cfg = "exec",
            doc = "The manifest generator, run once per service and environment.",
        ),
    },
)
