"""cloud_run_image_test: a service's image run under runc as Cloud Run would run it."""

load("@rules_proto//proto:defs.bzl", "ProtoInfo")
load(":oci_image_info.bzl", "OciImageInfo")
load(":oci_layer_info.bzl", "OciLayerInfo")
load(":runfiles.bzl", "runfiles_path")

_ServiceProtosInfo = provider(
    doc = "Descriptor sets of the protos of the gRPC libraries a binary depends on.",
    fields = {"descriptor_sets": "depset of Files"},
)

def _service_protos_impl(_target, ctx):
    direct = []
    if ctx.rule.kind == "py_grpc_library":
        direct = [src[ProtoInfo].direct_descriptor_set for src in ctx.rule.attr.srcs]
    return [_ServiceProtosInfo(descriptor_sets = depset(direct, transitive = [
        dep[_ServiceProtosInfo].descriptor_sets
        for dep in getattr(ctx.rule.attr, "deps", [])
        if _ServiceProtosInfo in dep
    ]))]

_service_protos = aspect(
    implementation = _service_protos_impl,
    attr_aspects = ["deps"],
    doc = "Collects the protos of the py_grpc_library targets a py_binary depends on.",
)

def _cloud_run_image_test_impl(ctx):
    runner = ctx.attr._runner[DefaultInfo]
    executable = ctx.actions.declare_file(ctx.label.name)
    ctx.actions.symlink(
        output = executable,
        target_file = ctx.executable._runner,
        is_executable = True,
    )
    image = ctx.attr.image[OciImageInfo]
    app_layer = ctx.attr.app_layer[OciLayerInfo]
    descriptor_sets = ctx.attr.binary[_ServiceProtosInfo].descriptor_sets.to_list()
    return [
        DefaultInfo(
            executable = executable,
            runfiles = ctx.runfiles(
                files = [image.layout, app_layer.paths] + descriptor_sets,
            ).merge(runner.default_runfiles),
        ),
        RunEnvironmentInfo(environment = {
            "IMAGE": runfiles_path(image.layout),
            "APP_LAYER_PATHS": runfiles_path(app_layer.paths),
            "SERVICE_DESCRIPTORS": " ".join([runfiles_path(f) for f in descriptor_sets]),
        }),
    ]

cloud_run_image_test = rule(
    implementation = _cloud_run_image_test_impl,
    test = True,
    doc = """Runs a service's image with runc as Cloud Run would (read-only root, the image's
non-root user, `$PORT`; bazel/tools/cloud_run_image_test.py): every module of the app layer
imports with the image's interpreter; the server gets to SERVING, serves through reflection
each service of the py_grpc_library targets its binary depends on, and exits 0 on SIGTERM.
Runs as root with runc on PATH: tag it `requires-root` (the cloud_run_service macro does).""",
    attrs = {
        "image": attr.label(mandatory = True, providers = [OciImageInfo], doc = "The image."),
        "app_layer": attr.label(
            mandatory = True,
            providers = [OciLayerInfo],
            doc = "Its py_app_layer: each of its modules must import.",
        ),
        "binary": attr.label(
            mandatory = True,
            aspects = [_service_protos],
            doc = "The py_binary the image runs: the services of the gRPC libraries it " +
                  "depends on must be served.",
        ),
        "_runner": attr.label(
            default = "//bazel/tools:cloud_run_image_test",
            executable = True,
            cfg = "target",
        ),
    },
)
