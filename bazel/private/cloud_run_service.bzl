"""cloud_run_service: one Cloud Run service from a py_binary (image, manifest, push targets)."""

load(":cloud_run_image_test.bzl", "cloud_run_image_test")
load(":cloud_run_manifest.bzl", "CloudRunManifestInfo", "cloud_run_manifest")
load(":cloud_run_push.bzl", "cloud_run_push_rule")
load(":cloud_run_service_info.bzl", "CloudRunServiceInfo")
load(":oci_image.bzl", "oci_image_rule")
load(":oci_image_info.bzl", "OciImageInfo")
load(":oci_tarball.bzl", "oci_tarball")
load(":py_app_layer.bzl", "py_app_layer")
load(":py_packages_layer.bzl", "py_packages_layer")
load(":sbom.bzl", "oci_sbom")
load(":smoke_checks.bzl", "smoke_check")
load(":stamp.bzl", "stamp_requested")

def _cloud_run_service_impl(ctx):
    image = ctx.attr.image[OciImageInfo]
    manifest = ctx.attr.manifest[CloudRunManifestInfo] if CloudRunManifestInfo in ctx.attr.manifest else None
    return [
        DefaultInfo(files = depset(
            [image.layout, image.digest, ctx.file.manifest] + ctx.files.sbom,
        )),
        CloudRunServiceInfo(
            service = ctx.attr.service,
            image = image,
            manifest = ctx.file.manifest,
            sbom = ctx.file.sbom,
            remote_tags = ctx.attr.remote_tags,
            stamped_tags = ctx.attr.stamped_tags,
            environments = manifest.environments if manifest else [],
            environment = manifest.environment if manifest else "",
            settings = manifest.settings if manifest else None,
            smoke_checks = [
                smoke_check("{} smoke_checks[{}]".format(ctx.label, i), text)
                for i, text in enumerate(ctx.attr.smoke_checks)
            ],
        ),
    ]

cloud_run_service_rule = rule(
    implementation = _cloud_run_service_impl,
    doc = """A Cloud Run service, for `cloud_run_push`: its name, image, manifest and tags as a
`CloudRunServiceInfo`. Building it builds the image and the manifest. Usually declared by the
`cloud_run_service` macro, with the image and manifest it declares.""",
    attrs = {
        "service": attr.string(
            mandatory = True,
            doc = "Cloud Run service name, as the manifest's `service` attribute.",
        ),
        "image": attr.label(
            mandatory = True,
            providers = [OciImageInfo],
            doc = "The service's oci_image.",
        ),
        "manifest": attr.label(
            mandatory = True,
            allow_single_file = [".yaml"],
            doc = "The service's cloud_run_manifest, of the same image.",
        ),
        "sbom": attr.label(
            allow_single_file = [".json"],
            doc = "The image's SBOM (oci_sbom), built with the service and attached to the " +
                  "image on every push.",
        ),
        "remote_tags": attr.string_list(
            doc = "Tags set after every push without `--environment`, e.g. `latest`; a push " +
                  "under `--environment=NAME` sets the tag NAME instead.",
        ),
        "stamped_tags": attr.string_list(
            doc = "Tag templates filled from the workspace status under `--stamp`, e.g. " +
                  "`{STABLE_RELEASE}` or `git-{STABLE_GIT_COMMIT}`; left out without it.",
        ),
        "smoke_checks": attr.string_list(
            doc = "Calls cloud_run_release makes at the candidate's tag URL after health, each " +
                  "a JSON object: `method` (`package.Service/Method`, unary methods only), " +
                  "`request` (a JSON object as a string, default `{}`), `code` (the gRPC " +
                  "status name expected, default `OK`) and `response` (a JSON object as a " +
                  "string the response must contain, optional). Validated at analysis.",
        ),
    },
)

def cloud_run_service(
        name,
        binary,
        base_layers,
        packages = None,
        interpreter = None,
        service = None,
        port = 8080,
        remote_tags = ["latest"],
        stamped_tags = [],
        smoke_checks = [],
        visibility = None,
        tags = None,
        testonly = None,
        **kwargs):
    """One Cloud Run service from a py_binary: its image, manifest and push targets.

    For `name = "ping"` it declares:

    - `ping_packages_layer` (with `packages`): py_packages_layer of `binary`, the third-party
      distributions it depends on and what they need, installed for the image;
    - `ping_app_layer`: py_app_layer of `binary` (its own code and generated stubs only,
      byte-compiled by the Python of `base_layers`);
    - `ping_image`: oci_image of `base_layers` + those layers, with `PYTHONUNBUFFERED=1`,
      `port` exposed and working directory `/app` (labelled with the revision under `--stamp`);
    - `ping_image_test`: cloud_run_image_test of the image, run by `bazel test`: under runc as
      Cloud Run would (read-only root, non-root, `$PORT`), every module of the app layer
      imports, the server gets to SERVING with the services of `binary`'s gRPC libraries, and
      exits 0 on SIGTERM. Tagged `requires-root` and `requires-tools` (runc) and `no-remote`;
    - `ping_tarball`: the image for `docker load` (`bazel-bin/.../ping_tarball.tar`, loads
      as `SERVICE:latest`);
    - `ping_sbom`: oci_sbom of the image, an SPDX 2.3 JSON document written as
      `SERVICE.spdx.json` (`bazel-bin/PACKAGE/SERVICE.spdx.json`): its Debian and Python
      packages (with each wheel's URL and sha256 from the pip install reports of its packages
      layer) and app layer, by the image's digest;
    - `ping_manifest`: cloud_run_manifest of the image, written as `SERVICE.yaml` next to the
      BUILD file's outputs (`bazel-bin/PACKAGE/SERVICE.yaml`, e.g. `route-guide.yaml`);
    - `ping`: the service itself (CloudRunServiceInfo); `bazel build :ping` builds the image,
      the SBOM and the manifest, and `cloud_run_push` targets list it in `services`;
    - `ping_push`: `bazel run :ping_push` pushes this one service (cloud_run_push).

    The base layers are shared: list the same deb_layer / files_layer targets in every service
    of a repository and each is built once; only the app layer and the image are the
    service's own, so an edit to one service rebuilds and re-pushes only those.

    Args:
      name: Bazel name of the service and prefix of the targets above.
      binary: the service's py_binary (its `main` is `<package>/main.py` of the binary).
      base_layers: layers under the app layer, least often changed first: usually a deb_layer
        with the Python interpreter (its `python` set, which compiles the layers' bytecode) and a
        files_layer with the third-party packages, unless `packages` gives them. Mandatory:
        the kit does not choose them for you.
      packages: the lock installed for the image (`@pypi_image//:packages`, a pip.target
        repository's): the image then gets a layer of exactly the `@pypi//...` distributions
        `binary` depends on, with what they need, and the build fails naming any that cannot
        go in.
      service: Cloud Run service name; default `name` with `_` replaced by `-`. Keys its
        settings in environment files, names its manifest (`SERVICE.yaml`) and, under
        `--repository PREFIX`, its repository (`PREFIX/SERVICE`, or the name an environment
        gives it).
      port: the container port: the manifest's `containerPort` (Cloud Run's `$PORT`) and the
        image's exposed port.
      interpreter: the Python of the base layers that runs `binary`'s main, e.g.
        `/usr/bin/python3.13`. Default: the one their deb_layer ships (its `python`).
      remote_tags: tags set on every push without `--environment`; under
        `--environment=NAME` the push sets the tag NAME instead, so that no two environments
        move one tag.
      stamped_tags: tag templates set on pushes with `--stamp`, filled from the workspace
        status, e.g. `["git-{STABLE_GIT_COMMIT}"]`.
      smoke_checks: calls the release's smoke test makes at the candidate's tag URL after
        health, each a dict: `method` (`package.Service/Method`, a unary method), `request`
        (JSON), and what to expect: `code` (a gRPC status name, default `OK`) and `response`
        (JSON the response must contain: every field given, with that value). A failing check
        leaves traffic as it was (docs/release.md).
      visibility: visibility of every target declared.
      tags: tags of every target declared.
      testonly: testonly of every target declared.
      **kwargs: the service's manifest settings, passed to cloud_run_manifest (`project`,
        `region`, `repository`, `environments`, `env`, `min_scale`, ...; see its doc).
        `image`, `out` and `service` are set here.
    """
    service = service or name.replace("_", "-")
    common = {"visibility": visibility, "tags": tags, "testonly": testonly}
    py_app_layer(
        name = name + "_app_layer",
        binary = binary,
        interpreter = interpreter or "",
        base_layers = base_layers,
        **common
    )
    layers = list(base_layers)
    if packages:
        py_packages_layer(
            name = name + "_packages_layer",
            binary = binary,
            packages = packages,
            base_layers = base_layers,
            **common
        )
        layers.append(":" + name + "_packages_layer")
    oci_image_rule(
        name = name + "_image",
        layers = layers + [":" + name + "_app_layer"],
        env = {"PYTHONUNBUFFERED": "1"},
        exposed_ports = ["{}/tcp".format(port)],
        workdir = "/app",
        stamp = stamp_requested(),
        **common
    )
    cloud_run_image_test(
        name = name + "_image_test",
        image = ":" + name + "_image",
        app_layer = ":" + name + "_app_layer",
        binary = binary,
        size = "medium",
        # As the kit's own image tests: runc runs containers as root only, and the result
        # depends on the machine's runc, which is no input of the test.
        tags = ["requires-root", "requires-tools", "no-remote"] + (tags or []),
        visibility = visibility,
    )
    oci_tarball(
        name = name + "_tarball",
        image = ":" + name + "_image",
        repo_tag = service + ":latest",
        **common
    )
    oci_sbom(
        name = name + "_sbom",
        image = ":" + name + "_image",
        app_layer = ":" + name + "_app_layer",
        image_name = service,
        out = service + ".spdx.json",
        **common
    )
    cloud_run_manifest(
        name = name + "_manifest",
        image = ":" + name + "_image",
        service = service,
        port = port,
        out = service + ".yaml",
        **(common | kwargs)
    )
    cloud_run_service_rule(
        name = name,
        service = service,
        image = ":" + name + "_image",
        manifest = ":" + name + "_manifest",
        sbom = ":" + name + "_sbom",
        remote_tags = remote_tags,
        stamped_tags = stamped_tags,
        smoke_checks = [json.encode(check) for check in smoke_checks],
        **common
    )
    cloud_run_push_rule(
        name = name + "_push",
        services = [":" + name],
        stamp = stamp_requested(),
        **common
    )
