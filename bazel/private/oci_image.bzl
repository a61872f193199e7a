"""oci_image: an OCI image layout (and its digest) from layers, as a build output."""

load(":oci_image_info.bzl", "OciImageInfo")
load(":oci_layer_info.bzl", "OciLayerInfo")

def _oci_image_impl(ctx):
    layout = ctx.actions.declare_directory(ctx.label.name)
    digest = ctx.actions.declare_file(ctx.label.name + ".digest")
    config_file = ctx.actions.declare_file(ctx.label.name + ".config.json")
    layers = [layer[OciLayerInfo] for layer in ctx.attr.layers]

    env, entrypoint = {}, []
    for layer in layers:
        env.update(layer.env)
        entrypoint = layer.entrypoint or entrypoint
    env.update(ctx.attr.env)
    config = {
        "Entrypoint": ctx.attr.entrypoint or entrypoint,
        "Env": ["{}={}".format(k, v) for k, v in sorted(env.items())],
        "User": ctx.attr.user,
        "WorkingDir": ctx.attr.workdir,
    }
    if ctx.attr.cmd:
        config["Cmd"] = ctx.attr.cmd
    if ctx.attr.exposed_ports:
        config["ExposedPorts"] = {port: {} for port in ctx.attr.exposed_ports}
    if ctx.attr.labels:
        config["Labels"] = ctx.attr.labels

    status_files = [ctx.info_file, ctx.version_file] if ctx.attr.stamp else []
    spec = ctx.actions.declare_file(ctx.label.name + ".spec.json")
    ctx.actions.write(spec, json.encode({
        "out_dir": layout.path,
        "digest_out": digest.path,
        "config_out": config_file.path,
        "architecture": ctx.attr.architecture,
        "os": ctx.attr.os,
        "config": config,
        "layers": [
            {
                "blob": layer.blob.path,
                "digest": layer.digest.path,
                "diff_id": layer.diff_id.path,
                "paths": layer.paths.path,
            }
            for layer in layers
        ],
        "status_files": [f.path for f in status_files],
    }))
    inputs = [spec] + status_files
    for layer in layers:
        inputs += [layer.blob, layer.digest, layer.diff_id, layer.paths]
    ctx.actions.run(
        executable = ctx.executable._tool,
        arguments = ["--spec", spec.path],
        inputs = inputs,
        outputs = [layout, digest, config_file],
        mnemonic = "OciImage",
        progress_message = "Assembling image %{label}",
    )
    return [
        DefaultInfo(files = depset([layout, digest])),
        OciImageInfo(
            layout = layout,
            digest = digest,
            config = config_file,
            install_reports = [report for layer in layers for report in layer.install_reports],
        ),
    ]

oci_image_rule = rule(
    implementation = _oci_image_impl,
    doc = """An OCI image layout directory (`oci-layout`, `index.json`, `blobs/sha256/...`) and
`NAME.digest` with the manifest's `sha256:...`, described to other rules by `OciImageInfo`. Attribute names follow rules_oci's `oci_image`
where they mean the same. Byte-for-byte reproducible: layers are deterministic tars and the
config carries no timestamp.""",
    attrs = {
        "layers": attr.label_list(
            providers = [OciLayerInfo],
            mandatory = True,
            doc = "Layers, least to most often changed (deb_layer, files_layer, py_app_layer).",
        ),
        "entrypoint": attr.string_list(doc = "Exec-form entrypoint; default: the last layer's that has one."),
        "cmd": attr.string_list(doc = "Default arguments to the entrypoint."),
        "env": attr.string_dict(doc = "Environment, over what the layers ask for."),
        "user": attr.string(default = "65532:65532", doc = "uid:gid the process runs as (nonroot)."),
        "workdir": attr.string(default = "/", doc = "Working directory."),
        "exposed_ports": attr.string_list(doc = "e.g. `8080/tcp` (documentation only on Cloud Run)."),
        "labels": attr.string_dict(doc = "Config labels."),
        "stamp": attr.bool(
            default = False,
            doc = "Add labels org.opencontainers.image.revision/version from the workspace " +
                  "status (STABLE_GIT_COMMIT, STABLE_RELEASE). The macro in defs.bzl sets it " +
                  "when Bazel runs with `--stamp`.",
        ),
        "architecture": attr.string(default = "amd64", doc = "Cloud Run runs linux/amd64."),
        "os": attr.string(default = "linux"),
        "_tool": attr.label(default = "//bazel/tools:oci_image", executable = True, cfg = "exec"),
    },
)
