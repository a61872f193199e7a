"""OciImageInfo: what rules that push, export or deploy an image need of it."""

OciImageInfo = provider(
    doc = "An image built by oci_image: its OCI layout, manifest digest and config.",
    fields = {
        "layout": "File (directory): the OCI image layout (`oci-layout`, `index.json`, `blobs/`)",
        "digest": "File: the image manifest's digest, `sha256:...`",
        "config": "File: the image config JSON (entrypoint, env, user, rootfs diff_ids)",
        "install_reports": "list of Files: pip's install reports of the wheels in its layers",
    },
)
