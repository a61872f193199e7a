"""The launcher script shared by the push rules (oci_push, cloud_run_push)."""

load(":runfiles.bzl", "runfiles_path", "shell_words")

def push_launcher(ctx, args, runfiles, more_runfiles = []):
    """DefaultInfo of an executable that runs the push tool with `args`, then the user's.

    Needs the rule to have `_launcher` (oci_push_launcher.sh) and `_tool` (the push py_binary,
    or another tool run the same way, such as the release tool); `more_runfiles` (runfiles
    objects) are merged in, e.g. a second tool's.
    """
    launcher = ctx.actions.declare_file(ctx.label.name + ".sh")
    ctx.actions.expand_template(
        template = ctx.file._launcher,
        output = launcher,
        is_executable = True,
        substitutions = {
            "%TOOL%": runfiles_path(ctx.executable._tool),
            "%ARGS%": shell_words(args),
        },
    )
    return DefaultInfo(
        executable = launcher,
        runfiles = ctx.runfiles(files = runfiles).merge_all(
            [ctx.attr._tool[DefaultInfo].default_runfiles] + more_runfiles,
        ),
    )

PUSH_TOOL_ATTRS = {
    "_launcher": attr.label(
        default = ":oci_push_launcher.sh",
        allow_single_file = True,
        doc = "Template of the executable `bazel run` starts: it finds the runfiles and runs " +
              "`_tool` with the rule's arguments, then the user's.",
    ),
    "_tool": attr.label(
        default = "//bazel/tools/push",
        executable = True,
        # The target configuration: the push runs under `bazel run`, on the target platform.
        cfg = "target",
        doc = "The registry client (bazel/tools/push) that pushes the images.",
    ),
}
