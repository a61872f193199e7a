"""deb_layer: a distroless base layer unpacked from Debian packages."""

load(":oci_layer_info.bzl", "OciLayerInfo", "declare_layer_outputs")

def _deb_layer_impl(ctx):
    blob, digest, diff_id, paths = declare_layer_outputs(ctx)
    args = ctx.actions.args()
    args.add(blob)
    args.add_all(ctx.files.debs)
    ctx.actions.run(
        executable = ctx.executable._tool,
        arguments = [args],
        inputs = ctx.files.debs,
        outputs = [blob, digest, diff_id, paths],
        mnemonic = "DebLayer",
        progress_message = "Unpacking %d Debian packages into %%{label}" % len(ctx.files.debs),
    )
    return [
        DefaultInfo(files = depset([blob])),
        OciLayerInfo(
            blob = blob,
            digest = digest,
            diff_id = diff_id,
            paths = paths,
            env = {},
            entrypoint = [],
        ),
    ]

deb_layer = rule(
    implementation = _deb_layer_impl,
    doc = """A layer of the files of Debian packages, as a distroless base: no maintainer scripts,
no docs or manuals, merged-/usr links, a CA bundle built from ca-certificates' files, and
/etc/passwd and /etc/group with root and `nonroot` (uid 65532).""",
    attrs = {
        "debs": attr.label_list(
            allow_files = [".deb"],
            mandatory = True,
            doc = "The packages, usually `@debian_trixie//:debs` (from deploy/base/debs.lock.json).",
        ),
        "_tool": attr.label(default = "//bazel/tools:deb_layer", executable = True, cfg = "exec"),
    },
)
