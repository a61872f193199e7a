"""jvm_import: prebuilt jars as a JavaInfo, for the kit's Java rules."""

load("@rules_java//java/common:java_common.bzl", "java_common")
load("@rules_java//java/common:java_info.bzl", "JavaInfo")

def _jvm_import_impl(ctx):
    deps = [dep[JavaInfo] for dep in ctx.attr.deps]
    infos = [
        JavaInfo(output_jar = jar, compile_jar = jar, deps = deps, neverlink = ctx.attr.neverlink)
        for jar in ctx.files.jars
    ]
    return [
        DefaultInfo(files = depset(ctx.files.jars)),
        java_common.merge(infos + ([] if ctx.attr.neverlink else deps)),
    ]

jvm_import = rule(
    implementation = _jvm_import_impl,
    doc = """Jars from elsewhere (Debian's `/usr/share/java` jars of `@java_debs`, a Maven
download) as one `JavaInfo`. Used as they are: no interface jars are made. With `neverlink`
they are on the compile classpath only (e.g. `javax.annotation.Generated`, which generated gRPC
code names but nothing needs when running).""",
    attrs = {
        "jars": attr.label_list(allow_files = [".jar"], mandatory = True, doc = "The jars."),
        "deps": attr.label_list(
            providers = [JavaInfo],
            doc = "What these jars need, on the classpath with them.",
        ),
        "neverlink": attr.bool(doc = "Compile against the jars, never run with them."),
    },
    provides = [JavaInfo],
)
