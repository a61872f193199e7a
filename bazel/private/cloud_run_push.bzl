"""cloud_run_push: `bazel run` pushes the images of Cloud Run services and writes their manifests."""

load(":cloud_run_service_info.bzl", "CloudRunServiceInfo")
load(":oci_push_launcher.bzl", "PUSH_TOOL_ATTRS", "push_launcher", "runfiles_path")

def _cloud_run_push_impl(ctx):
    services, runfiles, labels = [], [], {}
    for target in ctx.attr.services:
        info = target[CloudRunServiceInfo]
        if info.service in labels:
            fail("services {} and {} are both the Cloud Run service {}: their manifests ({}.yaml) would overwrite each other".format(
                labels[info.service],
                target.label,
                repr(info.service),
                info.service,
            ))
        labels[info.service] = target.label
        services.append({
            "service": info.service,
            "image": runfiles_path(info.image.layout),
            "manifest": runfiles_path(info.manifest),
            "tags": info.remote_tags,
            "stamped_tags": info.stamped_tags,
        })
        runfiles += [info.image.layout, info.manifest]
    status_files = []
    if ctx.attr.stamp:
        status_files.append(runfiles_path(ctx.info_file))
        runfiles.append(ctx.info_file)

    # What to push, written at analysis; paths are under the runfiles root.
    spec = ctx.actions.declare_file(ctx.label.name + ".push.json")
    ctx.actions.write(spec, json.encode_indent({
        "repository": ctx.attr.repository,
        "services": services,
        "status_files": status_files,
    }))
    return [push_launcher(ctx, ["--spec", runfiles_path(spec)], runfiles + [spec])]

cloud_run_push_rule = rule(
    implementation = _cloud_run_push_impl,
    executable = True,
    doc = """`bazel run` it to push every service of `services`, one after the other: each
image's blobs the registry lacks (a blob already pushed to another repository of the same
registry in this run is mounted from there, not uploaded again), its manifest by digest, then
its tags; then it writes the service's Cloud Run manifest, resolved for the repository pushed
to, as `SERVICE.yaml` in the directory `bazel run` was started from (`--manifest_dir` to
change it), ready for `gcloud run services replace SERVICE.yaml`.

Each service's repository is `PREFIX/SERVICE` with `--repository PREFIX` (e.g.
`europe-west1-docker.pkg.dev/PROJECT/REPO`), else the one its manifest names. A service that
fails does not stop the others; nothing of it is tagged and its manifest is not written. Ends
with one line per service on stdout (`ping: pushed REPO@sha256:... tags latest` or
`ping: FAILED: reason`). Exit 0 when all were pushed, 1 when any failed, 2 on bad input (then
nothing was sent). Arguments after `--` go to the push; see `--help`.""",
    attrs = PUSH_TOOL_ATTRS | {
        "services": attr.label_list(
            mandatory = True,
            allow_empty = False,
            providers = [CloudRunServiceInfo],
            doc = "The services (`cloud_run_service` targets), pushed in this order.",
        ),
        "repository": attr.string(
            doc = "Default repository prefix, `host/path`: each service goes to " +
                  "`PREFIX/SERVICE`. Empty: the repository each manifest names. " +
                  "`-- --repository PREFIX` overrides it.",
        ),
        "stamp": attr.bool(
            default = False,
            doc = "Fill each service's stamped_tags from the workspace status; the macro in " +
                  "defs.bzl sets it when Bazel runs with --stamp.",
        ),
    },
)
