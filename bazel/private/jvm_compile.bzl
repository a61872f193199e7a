"""The Java compile action shared by the kit's Java rules, and the attributes it needs."""

load("@rules_java//java/common:java_info.bzl", "JavaInfo")

JVM_COMPILE_ATTRS = {
    "_javac_tool": attr.label(
        default = "//bazel/tools:javac",
        executable = True,
        cfg = "exec",
        doc = "bazel/tools/javac.py: javac, then a deterministic jar.",
    ),
    "_javac": attr.label(
        default = "@host_jdk//:jdk/bin/javac",
        allow_single_file = True,
        cfg = "exec",
        doc = "The JDK's javac (host_jdk_repository).",
    ),
    "_jdk": attr.label(
        default = "@host_jdk//:jdk",
        cfg = "exec",
        doc = "Every file of that JDK: javac's inputs.",
    ),
}

def jvm_compile(ctx, out, srcs, srcjars, deps, mnemonic, runtime_deps = []):
    """Compiles Java sources into a jar and describes it for other Java rules.

    Args:
      ctx: the rule's context; its attributes include JVM_COMPILE_ATTRS.
      out: File: the jar to write.
      srcs: list of .java Files.
      srcjars: list of source archive Files (e.g. protoc's `--java_out=x.srcjar`).
      deps: list of JavaInfo to compile against; they are also the jar's runtime dependencies.
      mnemonic: string: the action's mnemonic.
      runtime_deps: list of JavaInfo needed only when running (not on any compile classpath).

    Returns:
      JavaInfo of `out`, with `deps` as its dependencies.
    """
    classpath = depset(transitive = [dep.transitive_compile_time_jars for dep in deps])
    args = ctx.actions.args()
    args.add("--javac", ctx.file._javac)
    args.add("--out", out)
    args.add_all(classpath, before_each = "--classpath")
    args.add_all(srcjars, before_each = "--srcjar")
    args.add_all(srcs)
    ctx.actions.run(
        executable = ctx.executable._javac_tool,
        arguments = [args],
        inputs = depset(srcs + srcjars, transitive = [classpath, ctx.attr._jdk.files]),
        outputs = [out],
        mnemonic = mnemonic,
        progress_message = "Compiling Java of %{label}",
    )
    return JavaInfo(output_jar = out, compile_jar = out, deps = deps, runtime_deps = runtime_deps)
