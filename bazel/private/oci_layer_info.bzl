"""OciLayerInfo: what an image needs of a layer."""

OciLayerInfo = provider(
    doc = "One gzip-compressed layer tarball and its digests, plus how to run what it holds.",
    fields = {
        "blob": "File: the gzip-compressed tar",
        "digest": "File: `sha256:...` of the blob (the manifest's layer digest)",
        "diff_id": "File: `sha256:...` of the uncompressed tar (the config's diff_id)",
        "paths": "File: JSON of the layer's files and symlinks (`{path: link target or null}`), " +
                 "so an image can check its entrypoint without unpacking the layer",
        "env": "dict: environment the layer's programs need (e.g. PYTHONPATH), or {}",
        "entrypoint": "list: how to start the layer's program, or []",
        "install_reports": "list of Files: pip's install reports (`--report`) of the wheels the " +
                           "layer holds, for the image's SBOM (each wheel's URL and sha256), or []",
    },
)

def declare_layer_outputs(ctx):
    """Declares the files of a layer named after the target, as layer_tar.write() writes them.

    Args:
      ctx: the layer rule's context; its label's name is the files' NAME.

    Returns:
      Tuple (blob, digest, diff_id, paths) of Files: NAME.tar.gz, NAME.tar.gz.digest,
      NAME.tar.gz.diff_id and NAME.tar.gz.paths.json, the OciLayerInfo fields of those names.
    """
    blob = ctx.actions.declare_file(ctx.label.name + ".tar.gz")
    digest = ctx.actions.declare_file(ctx.label.name + ".tar.gz.digest")
    diff_id = ctx.actions.declare_file(ctx.label.name + ".tar.gz.diff_id")
    paths = ctx.actions.declare_file(ctx.label.name + ".tar.gz.paths.json")
    return blob, digest, diff_id, paths
