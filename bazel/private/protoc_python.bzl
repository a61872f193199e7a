"""Shared by py_proto_library and py_grpc_library: where generated Python lands, and the
protoc action that writes it.

Generated modules follow the proto import path: `ping/v1/ping.proto` (imported as such because
its proto_library strips `/proto`) becomes `ping/v1/ping_pb2.py` under an import root that the
rules add to `sys.path`, so `from ping.v1 import ping_pb2` works from any package. When the
Bazel package already ends with the import directory (`proto/ping/v1`), the files sit beside
the .proto (`bazel-bin/proto/ping/v1/ping_pb2.py`, import root `proto`); otherwise under
`_<target name>_py/` in the package.
"""

load("@rules_python//python:defs.bzl", "PyInfo")

def import_path(src, proto_info):
    """Returns the path protoc knows `src` by, e.g. `ping/v1/ping.proto`.

    Args:
      src: File: a .proto source of the proto_library.
      proto_info: ProtoInfo of that proto_library, whose proto_source_root is stripped.

    Returns:
      String: `src`'s path under the proto source root, or its short_path when it has none.
    """
    root = proto_info.proto_source_root
    if root and root != ".":
        if src.path.startswith(root + "/"):
            return src.path[len(root) + 1:]
    return src.short_path

def is_well_known_type(path):
    """Modules for google/protobuf/*.proto ship with the protobuf wheel: never generated."""
    return path.startswith("google/protobuf/")

def _dirname(path):
    return path.rpartition("/")[0]

def _beside_sources(label, import_paths):
    for path in import_paths:
        directory = _dirname(path)
        if directory and label.package != directory and not label.package.endswith("/" + directory):
            return False
    return True

def declare_generated(actions, label, import_paths, suffixes):
    """Declares one file per (import path, suffix); returns (files, output root, import root).

    The output root is the directory to pass as protoc's `--*_out`; the import root is the
    runfiles-relative directory to put on `sys.path`.

    Args:
      actions: ctx.actions of the rule or aspect that declares the files.
      label: Label of the target the files belong to (the proto_library for the aspect, the
        py_grpc_library itself): its package decides whether they sit beside the .proto, its
        name the `_<name>_py/` directory otherwise.
      import_paths: non-empty list of import paths, e.g. `ping/v1/ping.proto`.
      suffixes: non-empty list of what replaces `.proto`, e.g. `["_pb2.py", "_pb2.pyi"]`.

    Returns:
      Tuple (files, output_root, import_root): the list of declared Files, in import path
      then suffix order; the exec-root-relative output directory string; and the
      runfiles-relative import root string (`<repository>/<dir>`).
    """
    prefix = "" if _beside_sources(label, import_paths) else "_{}_py/".format(label.name)
    files = []
    for path in import_paths:
        stem = path[:-len(".proto")]
        for suffix in suffixes:
            name = stem.rpartition("/")[2] if not prefix else stem
            files.append(actions.declare_file(prefix + name + suffix))

    first, first_stem = files[0], import_paths[0][:-len(".proto")] + suffixes[0]
    output_root = first.path[:-len(first_stem)].rstrip("/")
    short_root = first.short_path[:-len(first_stem)].rstrip("/")
    if short_root.startswith("../"):
        import_root = short_root[len("../"):]  # an external repository: ../<repo>/<dir>
    else:
        import_root = "/".join([p for p in [label.workspace_name or "_main", short_root] if p])
    return files, output_root, import_root

def run_protoc(actions, protoc, proto_info, import_paths, outputs, out_flags, mnemonic):
    """Runs protoc on `import_paths`, from sources so that .proto comments become docstrings.

    Args:
      actions: ctx.actions of the rule or aspect that runs protoc.
      protoc: File: the protoc executable (ctx.executable._protoc).
      proto_info: ProtoInfo of the proto_library: its transitive proto paths and sources.
      import_paths: list of import paths of the .proto files to generate from.
      outputs: list of Files protoc writes, as declare_generated declared them.
      out_flags: list of protoc output flags, e.g. `--python_out=<output root>`.
      mnemonic: string: the action's mnemonic, e.g. `PyProtoGen`.
    """
    args = actions.args()
    args.add_all(proto_info.transitive_proto_path, format_each = "--proto_path=%s")
    args.add_all(out_flags)
    args.add_all(import_paths)
    actions.run(
        executable = protoc,
        arguments = [args],
        inputs = proto_info.transitive_sources,
        outputs = outputs,
        mnemonic = mnemonic,
        progress_message = "Generating Python for %{label}",
    )

def python_library_providers(ctx, modules, imports, libraries):
    """DefaultInfo and PyInfo for generated modules plus the Python libraries they import."""
    infos = [lib[PyInfo] for lib in libraries]
    return [
        DefaultInfo(
            files = modules,
            runfiles = ctx.runfiles(transitive_files = modules).merge_all(
                [lib[DefaultInfo].default_runfiles for lib in libraries],
            ),
        ),
        PyInfo(
            transitive_sources = depset(
                [f for f in modules.to_list() if f.extension == "py"],
                transitive = [i.transitive_sources for i in infos],
            ),
            imports = depset(transitive = [imports] + [i.imports for i in infos]),
            uses_shared_libraries = any([i.uses_shared_libraries for i in infos]),
            has_py2_only_sources = False,
            has_py3_only_sources = True,
        ),
    ]
