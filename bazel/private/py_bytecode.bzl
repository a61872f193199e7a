"""py_bytecode: .pyc files beside a library's sources, for the build's own Python to import.

Without them every test, server and client process compiles each module it imports from source
(grpc, protobuf, cryptography, ...): a sandboxed process cannot keep the .pyc it writes, so the
next one compiles them again. Compiled once here, they sit in `__pycache__/` next to the sources
in every runfiles tree, where the interpreter looks first.
"""

_PYTHON_TOOLCHAIN = "@bazel_tools//tools/python:toolchain_type"

def _py_bytecode_impl(ctx):
    runtime = ctx.toolchains[_PYTHON_TOOLCHAIN].py3_runtime
    package = "/".join([p for p in (ctx.label.workspace_root, ctx.label.package) if p])
    jobs = {}
    outputs = []
    for src in ctx.files.srcs:
        if not src.path.startswith(package + "/"):
            fail("py_bytecode: {} is not in {}'s package".format(src.path, ctx.label))
        relative = src.path[len(package) + 1:]
        directory, _, name = relative.rpartition("/")
        pyc = "{}__pycache__/{}.{}.pyc".format(
            directory + "/" if directory else "",
            name[:-len(".py")],
            ctx.attr.cache_tag,
        )
        outputs.append(ctx.actions.declare_file(pyc))
        jobs[relative] = src.path
    if not outputs:
        return [DefaultInfo()]
    jobs_file = ctx.actions.declare_file(ctx.label.name + ".jobs.json")
    ctx.actions.write(jobs_file, json.encode(jobs))

    # compile_in_image.py writes OUT/<relative dir>/__pycache__/<name>.<its cache tag>.pyc: OUT
    # is this package's output directory, so each lands on the file declared above (a cache
    # tag other than the interpreter's leaves them missing, and the action fails).
    out = "/".join([p for p in (ctx.bin_dir.path, package) if p])
    ctx.actions.run_shell(
        command = '"$1" -S -P "$2" "$3" < "$4"',
        arguments = [runtime.interpreter.path, ctx.file._compiler.path, out, jobs_file.path],
        inputs = depset(
            ctx.files.srcs + [ctx.file._compiler, jobs_file],
            transitive = [runtime.files],
        ),
        tools = [runtime.interpreter],
        outputs = outputs,
        env = {
            "PYTHONHASHSEED": "0",
            "PYTHONDONTWRITEBYTECODE": "1",
            "PYTHONNOUSERSITE": "1",
            # A wheel's SyntaxWarnings (invalid escapes) are its own, not the build's to print.
            "PYTHONWARNINGS": "ignore",
            "LC_ALL": "C.UTF-8",
        },
        mnemonic = "PyBytecode",
        progress_message = "Compiling %{label}'s Python for the build's interpreter",
    )
    return [DefaultInfo(files = depset(outputs), runfiles = ctx.runfiles(files = outputs))]

py_bytecode = rule(
    implementation = _py_bytecode_impl,
    doc = """The `.pyc` of each of `srcs`, compiled by the Python toolchain's interpreter, at
`__pycache__/<name>.<cache_tag>.pyc` beside its source (PEP 3147), checked by nothing but the
build (`unchecked-hash`, PEP 552): byte-identical from run to run. Put it in a library's `data`
so that every runfiles tree with the sources has their bytecode too.""",
    attrs = {
        "srcs": attr.label_list(
            allow_files = [".py"],
            doc = "The .py files of this package to compile.",
        ),
        "cache_tag": attr.string(
            mandatory = True,
            doc = "The toolchain interpreter's `sys.implementation.cache_tag`, e.g. " +
                  "`cpython-313`: it names the files, which must be known before the build.",
        ),
        "_compiler": attr.label(
            default = Label("//bazel/tools:compile_in_image.py"),
            allow_single_file = True,
        ),
    },
    toolchains = [_PYTHON_TOOLCHAIN],
)
