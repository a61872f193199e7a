"""java_proto_library: Java message classes for proto_library targets, from protoc's Java
generator of the same version as the protobuf-java runtime they run with."""

load("@rules_java//java/common:java_common.bzl", "java_common")
load("@rules_java//java/common:java_info.bzl", "JavaInfo")
load("@rules_proto//proto:defs.bzl", "ProtoInfo")
load(":jvm_compile.bzl", "JVM_COMPILE_ATTRS", "jvm_compile")
load(":protoc_python.bzl", "import_path", "is_well_known_type")

JavaProtoInfo = provider(
    doc = "Java compiled for a proto_library and everything it imports.",
    fields = {"java_info": "JavaInfo: the messages' jar with its dependencies"},
)

# The protoc and runtime must be the same release: generated code calls runtime internals.
JAVA_PROTO_ATTRS = {
    "_java_protoc": attr.label(
        default = "@java_debs//:protoc",
        executable = True,
        cfg = "exec",
        doc = "protoc 3.21.12, Debian's, matching the protobuf-java jar.",
    ),
    "_protobuf_java": attr.label(
        default = "//java/deps:protobuf",
        providers = [JavaInfo],
        doc = "The protobuf-java runtime (with the well-known types' classes).",
    ),
}

def run_java_protoc(ctx, proto_info, paths, out, flags, mnemonic, tools = []):
    """Runs protoc on `paths` of `proto_info` into the source archive `out`.

    Args:
      ctx: the rule's or aspect's context, with JAVA_PROTO_ATTRS.
      proto_info: ProtoInfo: its transitive proto paths and sources are protoc's inputs.
      paths: list of import paths to generate from, e.g. `ping/v1/ping.proto`.
      out: File: the `.srcjar` protoc writes.
      flags: list of protoc flags naming the generator, `{out}` standing for `out`'s path.
      mnemonic: string: the action's mnemonic.
      tools: list of executables protoc runs (plugins).
    """
    args = ctx.actions.args()
    args.add_all(proto_info.transitive_proto_path, format_each = "--proto_path=%s")
    args.add_all([flag.format(out = out.path) for flag in flags])
    args.add_all(paths)
    ctx.actions.run(
        executable = ctx.executable._java_protoc,
        arguments = [args],
        inputs = proto_info.transitive_sources,
        tools = tools,
        outputs = [out],
        mnemonic = mnemonic,
        progress_message = "Generating Java for %{label}",
    )

def _java_proto_aspect_impl(target, ctx):
    proto_info = target[ProtoInfo]
    deps = [dep[JavaProtoInfo].java_info for dep in getattr(ctx.rule.attr, "deps", [])]
    paths = [import_path(src, proto_info) for src in proto_info.direct_sources]
    paths = [p for p in paths if not is_well_known_type(p)]
    runtime = ctx.attr._protobuf_java[JavaInfo]
    if not paths:  # the well-known types: their classes ship in protobuf-java
        return [JavaProtoInfo(java_info = java_common.merge([runtime] + deps))]
    srcjar = ctx.actions.declare_file(target.label.name + "-java-proto.srcjar")
    run_java_protoc(ctx, proto_info, paths, srcjar, ["--java_out={out}"], "JavaProtoGen")
    jar = ctx.actions.declare_file(target.label.name + "-java-proto.jar")
    java_info = jvm_compile(ctx, jar, [], [srcjar], [runtime] + deps, "JavaProtoCompile")
    return [JavaProtoInfo(java_info = java_info)]

_java_proto_aspect = aspect(
    implementation = _java_proto_aspect_impl,
    attr_aspects = ["deps"],
    required_providers = [ProtoInfo],
    attrs = JVM_COMPILE_ATTRS | JAVA_PROTO_ATTRS,
    doc = "Generates and compiles Java once per proto_library, shared by every user of it.",
)

def _java_proto_library_impl(ctx):
    java_info = java_common.merge([dep[JavaProtoInfo].java_info for dep in ctx.attr.deps])
    return [DefaultInfo(files = java_info.full_compile_jars), java_info]

java_proto_library = rule(
    implementation = _java_proto_library_impl,
    doc = """Java message classes for `proto_library` targets and everything they import, as
a `JavaInfo` (jvm_library / jvm_binary / java_grpc_library `deps`, or rules_java's). Generated
by Debian's protoc 3.21.12, the release of the protobuf-java runtime it brings along
(`//java/deps:protobuf`); compiled with the kit's javac (jvm_compile). Each proto_library is
generated once, however many targets use it; the well-known types' classes come from the
runtime. Class names follow the .proto's `java_package`, `java_outer_classname` and
`java_multiple_files` options, as protoc's Java generator defines them.""",
    attrs = {
        "deps": attr.label_list(
            providers = [ProtoInfo],
            aspects = [_java_proto_aspect],
            mandatory = True,
            doc = "proto_library targets to generate Java for, with their transitive deps.",
        ),
    },
    provides = [JavaInfo],
)
