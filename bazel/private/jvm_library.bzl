"""jvm_library: Java sources compiled by the JDK's javac into a jar, as a JavaInfo."""

load("@rules_java//java/common:java_info.bzl", "JavaInfo")
load(":jvm_compile.bzl", "JVM_COMPILE_ATTRS", "jvm_compile")

def _jvm_library_impl(ctx):
    out = ctx.actions.declare_file("lib{}.jar".format(ctx.label.name))
    java_info = jvm_compile(
        ctx,
        out,
        ctx.files.srcs,
        [],
        [dep[JavaInfo] for dep in ctx.attr.deps],
        "JvmCompile",
        runtime_deps = [dep[JavaInfo] for dep in ctx.attr.runtime_deps],
    )
    runfiles = ctx.runfiles(files = ctx.files.data).merge_all([
        dep[DefaultInfo].default_runfiles
        for dep in ctx.attr.deps + ctx.attr.runtime_deps + ctx.attr.data
    ])
    return [DefaultInfo(files = depset([out]), runfiles = runfiles), java_info]

jvm_library = rule(
    implementation = _jvm_library_impl,
    doc = """Java sources compiled with the build machine's JDK (`@host_jdk`) into
`lib<name>.jar`, a deterministic jar, as a `JavaInfo` that jvm_binary, other jvm_library
targets and rules_java's own rules accept. The kit's stand-in for `java_library`, whose
java_tools Debian's Bazel does not ship; `--release 21`, no annotation processors.""",
    attrs = JVM_COMPILE_ATTRS | {
        "srcs": attr.label_list(allow_files = [".java"], doc = "The .java files."),
        "deps": attr.label_list(
            providers = [JavaInfo],
            doc = "What the sources compile against (JavaInfo: jvm_library, jvm_import, " +
                  "java_proto_library, java_grpc_library, or rules_java's targets).",
        ),
        "runtime_deps": attr.label_list(
            providers = [JavaInfo],
            doc = "Needed only when running, e.g. a transport found by reflection.",
        ),
        "data": attr.label_list(allow_files = True, doc = "Files the code reads when running."),
    },
    provides = [JavaInfo],
)
