"""py_grpc_library: gRPC service stubs (`_pb2_grpc.py`) for one proto_library."""

load("@rules_proto//proto:defs.bzl", "ProtoInfo")
load("@rules_python//python:defs.bzl", "PyInfo")
load(":protoc_python.bzl", "declare_generated", "import_path", "python_library_providers", "run_protoc")

def _py_grpc_library_impl(ctx):
    if len(ctx.attr.srcs) != 1:
        fail("py_grpc_library takes exactly one proto_library in srcs, got {}".format(len(ctx.attr.srcs)))
    proto_info = ctx.attr.srcs[0][ProtoInfo]
    paths = [import_path(src, proto_info) for src in proto_info.direct_sources]
    modules, output_root, import_root = declare_generated(
        ctx.actions,
        ctx.label,
        paths,
        ["_pb2_grpc.py"],
    )
    run_protoc(
        ctx.actions,
        ctx.executable._protoc,
        proto_info,
        paths,
        modules,
        ["--grpc_python_out=" + output_root],
        "PyGrpcGen",
    )
    return python_library_providers(
        ctx,
        depset(modules),
        depset([import_root]),
        [ctx.attr._grpcio] + ctx.attr.deps,
    )

py_grpc_library = rule(
    implementation = _py_grpc_library_impl,
    doc = """gRPC client stubs and servicer bases for the services of one proto_library.

`a/b/c.proto` becomes `a.b.c_pb2_grpc`, which imports `a.b.c_pb2`: list the py_proto_library
of the same proto_library in `deps`. Named and shaped like gRPC's own `py_grpc_library`.""",
    attrs = {
        "srcs": attr.label_list(
            providers = [ProtoInfo],
            mandatory = True,
            allow_empty = False,
            doc = "Exactly one proto_library whose services get stubs.",
        ),
        "deps": attr.label_list(
            providers = [PyInfo],
            mandatory = True,
            doc = "The py_proto_library for the same proto_library (the `_pb2` modules).",
        ),
        "_grpcio": attr.label(default = "@pypi//grpcio", providers = [PyInfo]),
        "_protoc": attr.label(default = "//bazel/protoc", executable = True, cfg = "exec"),
    },
    provides = [PyInfo],
)
