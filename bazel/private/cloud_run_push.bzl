"""cloud_run_push: `bazel run` pushes the images of Cloud Run services and writes their manifests."""

load(":cloud_run_manifest.bzl", "check_collisions")
load(":cloud_run_service_info.bzl", "CloudRunServiceInfo")
load(":oci_push_launcher.bzl", "PUSH_TOOL_ATTRS", "push_launcher")
load(":runfiles.bzl", "runfiles_path")

def _cloud_run_push_impl(ctx):
    services, runfiles, labels = [], [], {}
    for target in ctx.attr.services:
        info = target[CloudRunServiceInfo]
        if info.service in labels:
            fail("services {} and {} are both the Cloud Run service {}: their manifests ({}.yaml) would overwrite each other".format(
                labels[info.service],
                target.label,
                repr(info.service),
                info.service,
            ))
        labels[info.service] = target.label
        services.append({
            "service": info.service,
            "image": runfiles_path(info.image.layout),
            "manifest": runfiles_path(info.manifest),
            "sbom": runfiles_path(info.sbom) if info.sbom else None,
            # An environment's push moves its own tag only: staging never moves production's.
            "tags": [info.environment] if info.environment else info.remote_tags,
            "stamped_tags": info.stamped_tags,
        })
        runfiles += [info.image.layout, info.manifest] + ([info.sbom] if info.sbom else [])
    status_files = []
    if ctx.attr.stamp:
        status_files.append(runfiles_path(ctx.info_file))
        runfiles.append(ctx.info_file)

    # What to push, written at analysis; paths are under the runfiles root.
    spec = ctx.actions.declare_file(ctx.label.name + ".push.json")
    ctx.actions.write(spec, json.encode_indent({
        "repository": ctx.attr.repository,
        "services": services,
        "status_files": status_files,
    }))
    return [
        push_launcher(ctx, ["--spec", runfiles_path(spec)], runfiles + [spec]),
        OutputGroupInfo(_validation = depset(_check_environments(ctx))),
    ]

def _check_environments(ctx):
    """The validation actions of check_environments, their outputs.

    One per environment file (its services keys), and one of them all against every service's
    settings (no two deployments share a Cloud Run service).
    """
    if not ctx.attr.check_environments:
        return []
    users, files = {}, {}  # by path: the Cloud Run names of the services that read it; the file
    for target in ctx.attr.services:
        info = target[CloudRunServiceInfo]
        for file in info.environments:
            files[file.path] = file
            users.setdefault(file.path, []).append(info.service)
    settings = [
        target[CloudRunServiceInfo].settings
        for target in ctx.attr.services
        if target[CloudRunServiceInfo].settings
    ]
    checked = check_collisions(
        ctx,
        ctx.executable._check_tool,
        [files[path] for path in sorted(files)],
        settings,
    )
    for path, file in sorted(files.items()):
        out = ctx.actions.declare_file("{}.environments/{}.checked".format(ctx.label.name, path))
        args = ctx.actions.args()
        args.add("--check_service_keys", file)
        args.add_all(sorted(users[path]), before_each = "--service")
        args.add("--out", out)
        ctx.actions.run(
            executable = ctx.executable._check_tool,
            arguments = [args],
            inputs = [file],
            outputs = [out],
            mnemonic = "CloudRunEnvironmentCheck",
            progress_message = "Checking the services keys of {} for %{{label}}".format(file.short_path),
        )
        checked.append(out)
    return checked

cloud_run_push_rule = rule(
    implementation = _cloud_run_push_impl,
    executable = True,
    doc = """`bazel run` it to push every service of `services`, one after the other: each
image's blobs the registry lacks (a blob already pushed to another repository of the same
registry in this run is mounted from there, not uploaded again), its manifest by digest, then
its SBOM (when the service has one, as the macro's services do) as an OCI artifact whose subject
is the image (listed by the registry's referrers API, or in the referrers index tagged
`sha256-<image digest hex>` where the registry has none, so `oras discover` finds it), then
its tags; then it writes the service's Cloud Run manifest, resolved for the repository pushed
to, as `SERVICE.yaml` in the directory `bazel run` was started from (`--manifest_dir` to
change it), ready for `gcloud run services replace SERVICE.yaml`.

Each service's repository is `PREFIX/NAME` with `--repository PREFIX` (e.g.
`europe-west1-docker.pkg.dev/PROJECT/REPO`), NAME being its Cloud Run service name in the
environment built (`ping-staging` under `--environment=staging` if staging renames it), else the
one its manifest names. Tags go most specific first (stamped ones such as `git-<commit>`),
the moving tag last: the services' `remote_tags` (`latest`) without `--environment`, the
environment's own name under `--environment=NAME` (`staging`), so a push of one environment
never moves another's tag. A service that fails does
not stop the others; its manifest file is not written, and its summary line says which tags, if
any, moved before the failure. Ends
with one line per service on stdout (`ping: pushed REPO@sha256:... tags latest` or
`ping: FAILED: reason`). Exit 0 when all were pushed, 1 when any failed, 2 on bad input (then
nothing was sent). Arguments after `--` go to the push; see `--help`.""",
    attrs = PUSH_TOOL_ATTRS | {
        "services": attr.label_list(
            mandatory = True,
            allow_empty = False,
            providers = [CloudRunServiceInfo],
            doc = "The services (`cloud_run_service` targets), pushed in this order.",
        ),
        "repository": attr.string(
            doc = "Default repository prefix, `host/path`: each service goes to " +
                  "`PREFIX/NAME` (its Cloud Run name in the environment built). Empty: the " +
                  "repository each manifest names. " +
                  "`-- --repository PREFIX` overrides it.",
        ),
        "check_environments": attr.bool(
            default = False,
            doc = "Set it on the push of every service of the repository (the push-all): " +
                  "building or running this target then checks, as a validation action, " +
                  "each environment file of its services: what a manifest build would check " +
                  "for any `--environment`, and that every key of its `services` is the Cloud " +
                  "Run name (`service`) of one of the services here that read the file, so " +
                  "a typo such as `\"pingg\"` fails the build instead of applying to no " +
                  "service; and that no two deployments (a service in an environment) go to " +
                  "one Cloud Run service (project, region, name). Leave it False on a push of some of the services (a service's " +
                  "own `<name>_push`): it cannot know the names of the others that share " +
                  "the files.",
        ),
        "stamp": attr.bool(
            default = False,
            doc = "Fill each service's stamped_tags from the workspace status; the macro in " +
                  "defs.bzl sets it when Bazel runs with --stamp.",
        ),
        "_check_tool": attr.label(
            default = "//bazel/tools:cloud_run_manifest",
            executable = True,
            cfg = "exec",
            doc = "The manifest generator, which checks environment files with " +
                  "`--check_service_keys` (check_environments).",
        ),
    },
)
