"""CloudRunServiceInfo: one Cloud Run service, as cloud_run_push needs it."""

CloudRunServiceInfo = provider(
    doc = "A Cloud Run service declared with `cloud_run_service`: its image, manifest and tags.",
    fields = {
        "service": "str: the Cloud Run service name (the manifest rule's `service` attribute, " +
                   "before any environment override); the key of its environment settings, " +
                   "the last component of its repository under `--repository PREFIX`, and " +
                   "the name of its resolved manifest (`SERVICE.yaml`)",
        "image": "OciImageInfo: the service's image",
        "manifest": "File: its Cloud Run manifest (cloud_run_manifest), the image by digest",
        "sbom": "File or None: the image's SPDX SBOM (oci_sbom), which cloud_run_push " +
                "attaches to the pushed image",
        "remote_tags": "list of str: tags set after every push without `--environment`, " +
                       "e.g. `latest` (under `--environment=NAME`, the tag NAME instead)",
        "stamped_tags": "list of str: tag templates filled from the workspace status under " +
                        "`--stamp`, e.g. `git-{STABLE_GIT_COMMIT}`",
        "environments": "list of File: the environment files its manifest reads from " +
                        "(every one, whichever `--environment` picks); cloud_run_push checks " +
                        "their `services` keys",
        "environment": "str: the environment its manifest was built for (`--environment`), " +
                       "empty for none",
        "settings": "File or None: the JSON of every attribute its manifest was made from " +
                    "(cloud_run_manifest's `settings` output group), for cloud_run_push's " +
                    "check that no two environments share a Cloud Run service, and from " +
                    "which cloud_run_release makes the manifest of every environment",
        "smoke_checks": "list of dict: the calls cloud_run_release's smoke test makes at " +
                        "the candidate's tag URL after health, validated: `method` " +
                        "(`package.Service/Method`), `request` (a JSON object), `code` (a gRPC " +
                        "status name) and `response` (a JSON object, or None)",
    },
)
