"""jvm_binary: a launcher that runs a Java main class on the kit's JDK, with its classpath."""

load("@rules_java//java/common:java_common.bzl", "java_common")
load("@rules_java//java/common:java_info.bzl", "JavaInfo")
load(":runfiles.bzl", "runfiles_path", "shell_words")

def _jvm_binary_impl(ctx):
    runtime = java_common.merge([dep[JavaInfo] for dep in ctx.attr.deps])
    jars = runtime.transitive_runtime_jars
    native_dirs = {runfiles_path(lib).rpartition("/")[0]: None for lib in ctx.files.native_libs}
    launcher = ctx.actions.declare_file(ctx.label.name)
    ctx.actions.expand_template(
        template = ctx.file._launcher,
        output = launcher,
        is_executable = True,
        substitutions = {
            "%{main_class}": ctx.attr.main_class,
            "%{classpath}": shell_words([runfiles_path(jar) for jar in jars.to_list()]),
            "%{native_dirs}": shell_words(sorted(native_dirs)),
            "%{java}": runfiles_path(ctx.file._java),
            "%{release}": runfiles_path(ctx.file._release),
            "%{jvm_flags}": shell_words(ctx.attr.jvm_flags),
        },
    )
    runfiles = ctx.runfiles(
        files = ctx.files.native_libs + ctx.files.data + [ctx.file._java, ctx.file._release],
        transitive_files = depset(transitive = [jars, ctx.attr._jdk.files]),
    )
    for dep in ctx.attr.deps + ctx.attr.data:
        runfiles = runfiles.merge(dep[DefaultInfo].default_runfiles)
    return [DefaultInfo(executable = launcher, runfiles = runfiles)]

jvm_binary = rule(
    implementation = _jvm_binary_impl,
    executable = True,
    doc = """A Java program: `bazel run` it, or list it in a test's `data`. The launcher
(`bazel-bin/<package>/<name>`, bash) runs `main_class` with `@host_jdk`'s `java`, the runtime
classpath of `deps` (each jar once) and `jvm_flags`, in a UTF-8 locale when the caller's is
not (Java decodes arguments by the locale); the
directories of `native_libs` go on `java.library.path` and `LD_LIBRARY_PATH`. The JDK's
warnings about libraries using `sun.misc.Unsafe` or native code are turned off (they would add
lines about the libraries to the program's stderr). Exit status and signals are the JVM's
(exec). The kit's stand-in for `java_binary` (see jvm_library).""",
    attrs = {
        "main_class": attr.string(mandatory = True, doc = "The class whose `main` runs."),
        "deps": attr.label_list(
            providers = [JavaInfo],
            mandatory = True,
            doc = "The program's code and libraries (JavaInfo).",
        ),
        "native_libs": attr.label_list(
            allow_files = True,
            doc = "Shared libraries the JVM loads (e.g. netty-tcnative's, for TLS).",
        ),
        "jvm_flags": attr.string_list(doc = "Flags for `java`, before the class name."),
        "data": attr.label_list(allow_files = True, doc = "Files the program reads."),
        "_java": attr.label(default = "@host_jdk//:jdk/bin/java", allow_single_file = True),
        "_release": attr.label(default = "@host_jdk//:jdk/release", allow_single_file = True),
        "_jdk": attr.label(default = "@host_jdk//:jdk"),
        "_launcher": attr.label(
            default = ":jvm_binary_launcher.sh.tpl",
            allow_single_file = True,
        ),
    },
)
