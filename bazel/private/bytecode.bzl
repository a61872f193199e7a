"""Bytecode at build time: a layer's .py files compiled by the image's own Python."""

ImagePythonInfo = provider(
    doc = """The Python interpreter a layer ships (a deb_layer with `python`), unpacked for build
actions to run: the layers above it have their .py files byte-compiled by it.""",
    fields = {
        "root": "File (directory): the interpreter, its dynamic loader and libraries, its " +
                "standard library and the layer's .py files, with a python.json describing them",
        "interpreter": "string: the interpreter's path in the image, e.g. `/usr/bin/python3.13`",
    },
)

BYTECODE_ATTRS = {
    "_bytecode": attr.label(default = "//bazel/tools:bytecode", executable = True, cfg = "exec"),
}

def compile_bytecode(ctx, python, manifest = None, sources = None):
    """Declares NAME.pyc/, a layer's .pyc files as laid out in the image, and its compile action.

    The action byte-compiles with `python` (an ImagePythonInfo): the image's own interpreter.

    Args:
      ctx: the layer rule's context (with BYTECODE_ATTRS).
      python: ImagePythonInfo of the interpreter to compile with.
      manifest: File, JSON `{path in the image: file}` of the layer (its .py entries are
        compiled); None: the .py files of the Python root itself (its own layer's).
      sources: depset of the files the manifest names.

    Returns:
      The directory, for the layer's tool to add.
    """
    out = ctx.actions.declare_directory(ctx.label.name + ".pyc")
    args = ctx.actions.args()
    args.add("--python-root", python.root.path)
    args.add("--out", out.path)
    if manifest:
        args.add("--manifest", manifest)
    else:
        args.add("--root-sources")
    ctx.actions.run(
        executable = ctx.executable._bytecode,
        arguments = [args],
        inputs = depset(
            [python.root] + ([manifest] if manifest else []),
            transitive = [sources] if sources else [],
        ),
        outputs = [out],
        mnemonic = "PyBytecode",
        progress_message = "Compiling %{label}'s Python with the image's " + python.interpreter,
    )
    return out
