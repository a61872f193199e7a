"""files_layer: a layer of files (e.g. installed Python packages) under a directory."""

load(":bytecode.bzl", "BYTECODE_ATTRS", "ImagePythonInfo", "compile_bytecode")
load(":oci_layer_info.bzl", "OciLayerInfo", "declare_layer_outputs")

def _relative(file, strip_prefix):
    path = file.short_path
    if path.startswith("../"):
        path = path[len("../"):].partition("/")[2]  # ../<repo>/<path>
    if strip_prefix:
        if not path.startswith(strip_prefix + "/"):
            fail("{} is not under strip_prefix {}".format(path, strip_prefix))
        path = path[len(strip_prefix) + 1:]
    return path

def _files_layer_impl(ctx):
    blob, digest, diff_id, paths = declare_layer_outputs(ctx)
    manifest = {
        ctx.attr.directory.strip("/") + "/" + _relative(f, ctx.attr.strip_prefix): f.path
        for f in ctx.files.srcs
    }
    manifest_file = ctx.actions.declare_file(ctx.label.name + ".manifest.json")
    ctx.actions.write(manifest_file, json.encode(manifest))
    arguments = [blob.path, manifest_file.path]
    inputs = ctx.files.srcs + [manifest_file]
    if ctx.attr.python:
        bytecode = compile_bytecode(
            ctx,
            ctx.attr.python[ImagePythonInfo],
            manifest = manifest_file,
            sources = depset(ctx.files.srcs),
        )
        arguments.append(bytecode.path)
        inputs.append(bytecode)
    ctx.actions.run(
        executable = ctx.executable._tool,
        arguments = arguments,
        inputs = inputs,
        outputs = [blob, digest, diff_id, paths],
        mnemonic = "FilesLayer",
        progress_message = "Packing %{label}",
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

files_layer = rule(
    implementation = _files_layer_impl,
    doc = """A layer with `srcs` placed under `directory`, keeping their paths below
`strip_prefix`; with `python`, their .py files byte-compiled by that layer's interpreter.""",
    attrs = BYTECODE_ATTRS | {
        "srcs": attr.label_list(allow_files = True, mandatory = True, doc = "Files to pack."),
        "directory": attr.string(mandatory = True, doc = "Where in the image, e.g. `/usr/lib/python3/dist-packages`."),
        "strip_prefix": attr.string(doc = "Path prefix (within the files' repository) to drop."),
        "python": attr.label(
            providers = [ImagePythonInfo],
            doc = "A deb_layer with `python`: its interpreter compiles this layer's .py files " +
                  "(a .pyc beside each, as the image imports them).",
        ),
        "_tool": attr.label(default = "//bazel/tools:files_layer", executable = True, cfg = "exec"),
    },
)
