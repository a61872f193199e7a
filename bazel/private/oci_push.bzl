"""oci_push: `bazel run` pushes an oci_image to a registry (and resolves its Cloud Run manifest)."""

load(":oci_image_info.bzl", "OciImageInfo")

def _runfiles_path(file):
    # Paths under the runfiles root, for the launcher: main-repo files live under _main/.
    path = file.short_path
    return path[3:] if path.startswith("../") else "_main/" + path

def _oci_push_impl(ctx):
    layout = ctx.attr.image[OciImageInfo].layout
    args = ["--image", _runfiles_path(layout)]
    runfiles = [layout]
    if ctx.attr.repository:
        args += ["--repository", ctx.attr.repository]
    if ctx.file.manifest:
        args += ["--manifest", _runfiles_path(ctx.file.manifest)]
        runfiles.append(ctx.file.manifest)
    for tag in ctx.attr.remote_tags:
        args += ["--tag", tag]
    for template in ctx.attr.stamped_tags:
        args += ["--stamped_tag", template]
    if ctx.attr.stamp:
        args += ["--status_file", _runfiles_path(ctx.info_file)]
        runfiles.append(ctx.info_file)

    launcher = ctx.actions.declare_file(ctx.label.name + ".sh")
    ctx.actions.expand_template(
        template = ctx.file._launcher,
        output = launcher,
        is_executable = True,
        substitutions = {
            "%TOOL%": _runfiles_path(ctx.executable._tool),
            "%ARGS%": " ".join(["'{}'".format(a.replace("'", "'\\''")) for a in args]),
        },
    )
    return [DefaultInfo(
        executable = launcher,
        runfiles = ctx.runfiles(files = runfiles).merge(ctx.attr._tool[DefaultInfo].default_runfiles),
    )]

oci_push_rule = rule(
    implementation = _oci_push_impl,
    executable = True,
    doc = """`bazel run` it to push `image`: missing blobs, the manifest by digest, then the tags.
Prints `REPOSITORY@sha256:...` and writes the `manifest` resolved for that repository. Arguments
after `--` go to the push (`--repository`, `--tag`, `--print_manifest`, ... see `--help`).""",
    attrs = {
        "image": attr.label(
            mandatory = True,
            providers = [OciImageInfo],
            doc = "The oci_image to push.",
        ),
        "repository": attr.string(
            doc = "Where to push, `host/name`; default: the repository `manifest` names.",
        ),
        "manifest": attr.label(
            allow_single_file = [".yaml"],
            doc = "A cloud_run_manifest of the same image, resolved for the pushed repository.",
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
        "_launcher": attr.label(default = ":oci_push_launcher.sh", allow_single_file = True),
        "_tool": attr.label(default = "//bazel/tools/push", executable = True, cfg = "target"),
    },
)
