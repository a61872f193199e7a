"""py_proto_library: Python message modules (`_pb2.py` and `_pb2.pyi`) for proto_library targets."""

load("@rules_proto//proto:defs.bzl", "ProtoInfo")
load("@rules_python//python:defs.bzl", "PyInfo")
load(":protoc_python.bzl", "declare_generated", "import_path", "is_well_known_type", "python_library_providers", "run_protoc")

PyProtoInfo = provider(
    doc = "Python generated for a proto_library and everything it imports.",
    fields = {
        "modules": "depset of generated files (`_pb2.py`, `_pb2.pyi`)",
        "imports": "depset of runfiles-relative import roots to put on sys.path",
    },
)

def _py_proto_aspect_impl(target, ctx):
    proto_info = target[ProtoInfo]
    paths = [import_path(src, proto_info) for src in proto_info.direct_sources]
    paths = [p for p in paths if not is_well_known_type(p)]
    direct_modules, direct_imports = [], []
    if paths:
        direct_modules, output_root, import_root = declare_generated(
            ctx.actions,
            target.label,
            paths,
            ["_pb2.py", "_pb2.pyi"],
        )
        run_protoc(
            ctx.actions,
            ctx.executable._protoc,
            proto_info,
            paths,
            direct_modules,
            ["--python_out=" + output_root, "--pyi_out=" + output_root],
            "PyProtoGen",
        )
        direct_imports = [import_root]
    deps = [dep[PyProtoInfo] for dep in getattr(ctx.rule.attr, "deps", [])]
    return [PyProtoInfo(
        modules = depset(direct_modules, transitive = [d.modules for d in deps]),
        imports = depset(direct_imports, transitive = [d.imports for d in deps]),
    )]

_py_proto_aspect = aspect(
    implementation = _py_proto_aspect_impl,
    attr_aspects = ["deps"],
    required_providers = [ProtoInfo],
    attrs = {
        "_protoc": attr.label(default = "//bazel/protoc", executable = True, cfg = "exec"),
    },
    doc = "Generates `_pb2.py`/`_pb2.pyi` once per proto_library, shared by every user of it.",
)

def _py_proto_library_impl(ctx):
    infos = [dep[PyProtoInfo] for dep in ctx.attr.deps]
    return python_library_providers(
        ctx,
        depset(transitive = [i.modules for i in infos]),
        depset(transitive = [i.imports for i in infos]),
        [ctx.attr._protobuf],
    )

py_proto_library = rule(
    implementation = _py_proto_library_impl,
    doc = """Python message modules for `proto_library` targets and everything they import.

Each .proto at import path `a/b/c.proto` becomes the module `a.b.c_pb2` (with a `c_pb2.pyi`
for type checkers). Use it in `deps` of py_library/py_binary/py_test. The well-known types
(`google/protobuf/*.proto`) come from the protobuf wheel, which this target brings along.""",
    attrs = {
        "deps": attr.label_list(
            providers = [ProtoInfo],
            aspects = [_py_proto_aspect],
            mandatory = True,
            doc = "proto_library targets to generate Python for, with their transitive deps.",
        ),
        "_protobuf": attr.label(default = "@pypi//protobuf", providers = [PyInfo]),
    },
    provides = [PyInfo],
)
