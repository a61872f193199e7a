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

def pack_files_layer(ctx, files, directory, strip_prefix = "", python = None, install_reports = []):
    """Packs `files` under `directory` into the layer named after the target.

    Args:
      ctx: the rule's context, with BYTECODE_ATTRS and a `_tool` of //bazel/tools:files_layer.
      files: list of Files.
      directory: where in the image, e.g. `/usr/lib/python3/dist-packages`.
      strip_prefix: path prefix (within the files' repository) to drop.
      python: ImagePythonInfo that byte-compiles the .py files, or None.
      install_reports: pip install reports of the wheels among `files`.

    Returns:
      The layer's providers: DefaultInfo and OciLayerInfo.
    """
    blob, digest, diff_id, paths = declare_layer_outputs(ctx)
    manifest = {
        directory.strip("/") + "/" + _relative(f, strip_prefix): f.path
        for f in files
    }
    manifest_file = ctx.actions.declare_file(ctx.label.name + ".manifest.json")
    ctx.actions.write(manifest_file, json.encode(manifest))
    arguments = [blob.path, manifest_file.path]
    inputs = files + [manifest_file]
    if python:
        bytecode = compile_bytecode(ctx, python, manifest = manifest_file, sources = depset(files))
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
            install_reports = install_reports,
        ),
    ]

def _files_layer_impl(ctx):
    return pack_files_layer(
        ctx,
        ctx.files.srcs,
        ctx.attr.directory,
        ctx.attr.strip_prefix,
        ctx.attr.python[ImagePythonInfo] if ctx.attr.python else None,
    )

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
