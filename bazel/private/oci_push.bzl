"""oci_push: `bazel run` pushes one oci_image to one repository (no Cloud Run manifest)."""

load(":oci_image_info.bzl", "OciImageInfo")
load(":oci_push_launcher.bzl", "PUSH_TOOL_ATTRS", "push_launcher")
load(":runfiles.bzl", "runfiles_path")

def _oci_push_impl(ctx):
    layout = ctx.attr.image[OciImageInfo].layout
    args = ["--image", runfiles_path(layout)]
    runfiles = [layout]
    if ctx.attr.repository:
        args += ["--repository", ctx.attr.repository]
    for tag in ctx.attr.remote_tags:
        args += ["--tag", tag]
    for template in ctx.attr.stamped_tags:
        args += ["--stamped_tag", template]
    if ctx.attr.stamp:
        args += ["--status_file", runfiles_path(ctx.info_file)]
        runfiles.append(ctx.info_file)
    return [push_launcher(ctx, args, runfiles)]

oci_push_rule = rule(
    implementation = _oci_push_impl,
    executable = True,
    doc = """`bazel run` it to push `image` to `repository`: the blobs the registry lacks, the
manifest by digest, then the tags. Prints `REPOSITORY@sha256:...` on stdout. For an image that
is not a Cloud Run service (a Cloud Run service's push is `cloud_run_push`, which also writes
its manifest). Arguments after `--` go to the push (`--repository`, `--tag`, ... see `--help`).
Exit 0 pushed, 1 the registry or the network failed, 2 bad input (nothing sent).""",
    attrs = PUSH_TOOL_ATTRS | {
        "image": attr.label(
            mandatory = True,
            providers = [OciImageInfo],
            doc = "The oci_image to push.",
        ),
        "repository": attr.string(
            doc = "Where to push, the whole repository `host/path/name`; without it, " +
                  "`bazel run` needs `-- --repository ...`.",
        ),
        "remote_tags": attr.string_list(doc = "Tags set after every push, e.g. `latest`."),
        "stamped_tags": attr.string_list(
            doc = "Tag templates filled from the workspace status under `--stamp`, e.g. " +
                  "`{STABLE_RELEASE}` or `git-{STABLE_GIT_COMMIT}`; left out without it.",
        ),
        "stamp": attr.bool(
            default = False,
            doc = "Fill stamped_tags; the macro in defs.bzl sets it when Bazel runs with --stamp.",
        ),
    },
)
