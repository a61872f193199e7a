"""oci_tarball: an image as a tarball for `docker load`."""

load(":oci_image_info.bzl", "OciImageInfo")

def _oci_tarball_impl(ctx):
    tarball = ctx.actions.declare_file(ctx.label.name + ".tar")
    layout = ctx.attr.image[OciImageInfo].layout
    ctx.actions.run(
        executable = ctx.executable._tool,
        arguments = [layout.path, ctx.attr.repo_tag, tarball.path],
        inputs = [layout],
        outputs = [tarball],
        mnemonic = "OciTarball",
        progress_message = "Writing docker-archive %{label}",
    )
    return [DefaultInfo(files = depset([tarball]))]

oci_tarball = rule(
    implementation = _oci_tarball_impl,
    doc = "The image as a docker-archive tarball: `docker load -i bazel-bin/.../NAME.tar`.",
    attrs = {
        "image": attr.label(mandatory = True, providers = [OciImageInfo], doc = "An oci_image."),
        "repo_tag": attr.string(mandatory = True, doc = "Tag it loads as, e.g. `ping:latest`."),
        "_tool": attr.label(default = "//bazel/tools:docker_archive", executable = True, cfg = "exec"),
    },
)
