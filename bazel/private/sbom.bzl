"""oci_sbom: an SPDX 2.3 JSON SBOM of an oci_image, read from the image's own layers."""

load(":oci_image_info.bzl", "OciImageInfo")
load(":oci_layer_info.bzl", "OciLayerInfo")

def _oci_sbom_impl(ctx):
    image = ctx.attr.image[OciImageInfo]
    app_layer = ctx.attr.app_layer[OciLayerInfo]
    out = ctx.actions.declare_file(ctx.attr.out or ctx.label.name + ".spdx.json")
    args = ctx.actions.args()
    args.add("--layout", image.layout.path)
    args.add("--digest", image.digest)
    args.add("--name", ctx.attr.image_name or ctx.label.name)
    args.add("--app-layer-digest", app_layer.digest)
    args.add_all(image.install_reports, before_each = "--install-report")
    args.add("--out", out)
    ctx.actions.run(
        executable = ctx.executable._tool,
        arguments = [args],
        inputs = [image.layout, image.digest, app_layer.digest] + image.install_reports,
        outputs = [out],
        mnemonic = "OciSbom",
        progress_message = "Writing the SBOM of %{label}",
    )
    return [DefaultInfo(files = depset([out]))]

oci_sbom = rule(
    implementation = _oci_sbom_impl,
    doc = """An SPDX 2.3 JSON document of what an image holds (bazel/tools/sbom.py): its Debian
packages (from the dpkg status.d files a deb_layer writes), its Python distributions (each
.dist-info, with the wheel's URL and sha256 from pip's install reports, which come with the
image's packages layer), its application layer
(by digest), all CONTAINED by the image it DESCRIBES (by manifest digest). The same image gives
the same bytes: creationInfo.created is fixed at the Unix epoch, and documentNamespace is
derived from the image digest. Debian packages' licenses are NOASSERTION (their copyright files
are not in the image); a Python distribution's is its License-Expression where it has one.""",
    attrs = {
        "image": attr.label(mandatory = True, providers = [OciImageInfo]),
        "app_layer": attr.label(
            mandatory = True,
            providers = [OciLayerInfo],
            doc = "The image's application layer (one of its layers).",
        ),
        "image_name": attr.string(doc = "Name of the image in the SBOM; default the target's."),
        "out": attr.string(doc = "Output file name; default `NAME.spdx.json`."),
        "_tool": attr.label(default = "//bazel/tools:sbom", executable = True, cfg = "exec"),
    },
)
