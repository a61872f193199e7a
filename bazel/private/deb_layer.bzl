"""deb_layer: a distroless base layer unpacked from Debian packages."""

load(":bytecode.bzl", "BYTECODE_ATTRS", "ImagePythonInfo", "compile_bytecode")
load(":oci_layer_info.bzl", "OciLayerInfo", "declare_layer_outputs")

def _deb_layer_impl(ctx):
    blob, digest, diff_id, paths = declare_layer_outputs(ctx)
    providers = []
    args = ctx.actions.args()
    args.add("--out", blob)
    inputs = list(ctx.files.debs)
    if ctx.attr.python:
        # The interpreter unpacked once (cached until the packages change), then run to
        # compile this layer's Python, and that of each layer above that names this one.
        root = ctx.actions.declare_directory(ctx.label.name + ".python_root")
        root_args = ctx.actions.args()
        root_args.add("--python-root", root.path)
        root_args.add("--python", ctx.attr.python)
        root_args.add_all(ctx.files.debs)
        ctx.actions.run(
            executable = ctx.executable._tool,
            arguments = [root_args],
            inputs = ctx.files.debs,
            outputs = [root],
            mnemonic = "DebPythonRoot",
            progress_message = "Unpacking %s of %%{label} to run it" % ctx.attr.python,
        )
        python = ImagePythonInfo(root = root, interpreter = ctx.attr.python)
        bytecode = compile_bytecode(ctx, python)
        args.add("--bytecode", bytecode.path)
        inputs.append(bytecode)
        providers.append(python)
    args.add_all(ctx.files.debs)
    ctx.actions.run(
        executable = ctx.executable._tool,
        arguments = [args],
        inputs = inputs,
        outputs = [blob, digest, diff_id, paths],
        mnemonic = "DebLayer",
        progress_message = "Unpacking %d Debian packages into %%{label}" % len(ctx.files.debs),
    )
    return providers + [
        DefaultInfo(files = depset([blob])),
        OciLayerInfo(
            blob = blob,
            digest = digest,
            diff_id = diff_id,
            paths = paths,
            env = {},
            entrypoint = [],
            install_reports = [],
        ),
    ]

deb_layer = rule(
    implementation = _deb_layer_impl,
    doc = """A layer of the files of Debian packages, as a distroless base: no maintainer scripts,
no docs or manuals, merged-/usr links, a CA bundle built from ca-certificates' files, and
/etc/passwd and /etc/group with root and `nonroot` (uid 65532). For scanners, a dpkg database
as distroless images have it (`/var/lib/dpkg/status.d/<package>`: each .deb's control paragraph,
installed) and `/etc/os-release` of Debian 13 (`/usr/lib/os-release` links to it).

With `python`, that interpreter of the packages compiles every .py file of the layer (its
standard library) to bytecode in a build action, and the layer returns it (`ImagePythonInfo`)
for the layers above to compile theirs: files_layer's `python`, py_app_layer's `base_layers`.""",
    attrs = BYTECODE_ATTRS | {
        "debs": attr.label_list(
            allow_files = [".deb"],
            mandatory = True,
            doc = "The packages, usually `@debian_trixie//:debs` (from deploy/base/debs.lock.json).",
        ),
        "python": attr.string(
            doc = "The packages' Python, e.g. `/usr/bin/python3.13`: it byte-compiles this " +
                  "layer and those above that name it (.pyc beside each .py, unchecked-hash).",
        ),
        "_tool": attr.label(default = "//bazel/tools:deb_layer", executable = True, cfg = "exec"),
    },
)
