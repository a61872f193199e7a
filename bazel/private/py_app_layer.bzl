"""py_app_layer: a py_binary's own code and generated files, without third-party packages."""

load("@rules_python//python:defs.bzl", "PyInfo")
load(":bytecode.bzl", "BYTECODE_ATTRS", "ImagePythonInfo", "compile_bytecode")
load(":oci_layer_info.bzl", "OciLayerInfo", "declare_layer_outputs")

def _python(ctx):
    """The base layers' ImagePythonInfo (the last that ships one); None without base_layers."""
    if not ctx.attr.base_layers:
        return None
    pythons = [layer[ImagePythonInfo] for layer in ctx.attr.base_layers if ImagePythonInfo in layer]
    if not pythons:
        fail("py_app_layer: none of base_layers ships the Python to run the app and compile " +
             "its bytecode with: a deb_layer with `python`")
    python = pythons[-1]
    if ctx.attr.interpreter and python.interpreter != ctx.attr.interpreter:
        fail(("py_app_layer: interpreter {} is not the base layers' Python ({}), which " +
              "compiles the bytecode").format(ctx.attr.interpreter, python.interpreter))
    return python

def _py_app_layer_impl(ctx):
    blob, digest, diff_id, paths = declare_layer_outputs(ctx)
    root = ctx.attr.directory.rstrip("/")
    binary = ctx.attr.binary
    manifest = {}
    for f in binary[DefaultInfo].default_runfiles.files.to_list():
        # Files of external repositories (../<repo>/...) are third-party: another layer's.
        if not f.short_path.startswith("../") and f.extension != "pyc":
            manifest[root + "/" + f.short_path] = f.path
    main = ctx.attr.main or (ctx.attr.binary.label.package + "/main.py")
    if root + "/" + main not in manifest:
        fail("py_app_layer: {} is not among {}'s files".format(main, binary.label))
    pythonpath = [root]
    main_repo = ctx.workspace_name + "/"
    for path in binary[PyInfo].imports.to_list():
        if path.startswith(main_repo):
            pythonpath.append(root + "/" + path[len(main_repo):])
    manifest_file = ctx.actions.declare_file(ctx.label.name + ".manifest.json")
    ctx.actions.write(manifest_file, json.encode(manifest))
    runfiles = binary[DefaultInfo].default_runfiles.files
    arguments = [blob.path, manifest_file.path]
    inputs = [manifest_file]
    python = _python(ctx)
    interpreter = python.interpreter if python else ctx.attr.interpreter
    if not interpreter:
        fail("py_app_layer: give `interpreter` or `base_layers` with a deb_layer that has `python`")
    if python:
        bytecode = compile_bytecode(ctx, python, manifest = manifest_file, sources = runfiles)
        arguments.append(bytecode.path)
        inputs.append(bytecode)
    ctx.actions.run(
        executable = ctx.executable._tool,
        arguments = arguments,
        inputs = depset(inputs, transitive = [runfiles]),
        outputs = [blob, digest, diff_id, paths],
        mnemonic = "PyAppLayer",
        progress_message = "Packing %{label}",
    )
    return [
        DefaultInfo(files = depset([blob])),
        OciLayerInfo(
            blob = blob,
            digest = digest,
            diff_id = diff_id,
            paths = paths,
            env = {"PYTHONPATH": ":".join(pythonpath)},
            entrypoint = [interpreter, root + "/" + main],
            install_reports = [],
        ),
    ]

py_app_layer = rule(
    implementation = _py_app_layer_impl,
    doc = """The workspace's files of a py_binary (its code, generated stubs, data) under
`directory`, laid out as in its runfiles, with the PYTHONPATH and entrypoint to run it. The
binary's third-party packages come from another layer (pip_target_repository), so that an edit
to the service rebuilds and re-pushes only this small layer.

Given the `base_layers` it goes on, its .py files are byte-compiled by the Python one of them
ships (a deb_layer with `python`), which also runs it: `interpreter` is that one's unless set.""",
    attrs = BYTECODE_ATTRS | {
        "binary": attr.label(mandatory = True, providers = [PyInfo], doc = "The py_binary."),
        "main": attr.string(doc = "Its main file, workspace-relative (default: <package>/main.py)."),
        "directory": attr.string(default = "/app", doc = "Where the files go in the image."),
        "interpreter": attr.string(
            doc = "The Python of the layers below that runs the binary, e.g. " +
                  "`/usr/bin/python3.13`. Default: the one the deb_layer of `base_layers` " +
                  "ships; set, it must be that one. The image build fails when the layers do " +
                  "not have it.",
        ),
        "base_layers": attr.label_list(
            providers = [OciLayerInfo],
            doc = "The layers the app goes on; the one with a Python (deb_layer's `python`) " +
                  "compiles the app's bytecode. Without them, the app has no bytecode.",
        ),
        "_tool": attr.label(default = "//bazel/tools:files_layer", executable = True, cfg = "exec"),
    },
)
