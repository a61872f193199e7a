"""Repository rule: grpc-java's jars, protoc and protoc-gen-grpc-java from a Debian lock."""

load(":deb_unpack.bzl", "unpack_deb")

# Target name (`:jars/<name>.jar`) -> the package's unversioned name under usr/share/java.
_JARS = {
    "error-prone-annotations": "error-prone-annotations.jar",
    "geronimo-annotation": "geronimo-annotation-1.3-spec.jar",
    "grpc-api": "grpc-api.jar",
    "grpc-context": "grpc-context.jar",
    "grpc-core": "grpc-core.jar",
    "grpc-netty": "grpc-netty.jar",
    "grpc-protobuf": "grpc-protobuf.jar",
    "grpc-protobuf-lite": "grpc-protobuf-lite.jar",
    "grpc-stub": "grpc-stub.jar",
    "gson": "gson.jar",
    "guava": "guava.jar",
    "netty-buffer": "netty-buffer.jar",
    "netty-codec": "netty-codec.jar",
    "netty-codec-http": "netty-codec-http.jar",
    "netty-codec-http2": "netty-codec-http2.jar",
    "netty-common": "netty-common.jar",
    "netty-handler": "netty-handler.jar",
    "netty-resolver": "netty-resolver.jar",
    "netty-transport": "netty-transport.jar",
    "netty-tcnative": "netty-tcnative.jar",
    "perfmark-api": "perfmark-api.jar",
    "picocli": "picocli.jar",
    "protobuf": "protobuf.jar",
}

# jni/ file name -> the file under usr/lib/x86_64-linux-gnu. netty-tcnative loads
# `netty_tcnative` and checks the name of the file it was loaded from; the others are what it
# links (libcrypto.so.3 links libzstd.so.1; libz and libc are the machine's).
_JNI = {
    "libnetty_tcnative.so": "jni/libnetty-tcnative.so",
    "libapr-1.so.0": "libapr-1.so.0",
    "libuuid.so.1": "libuuid.so.1",
    "libssl.so.3": "libssl.so.3",
    "libcrypto.so.3": "libcrypto.so.3",
    "libzstd.so.1": "libzstd.so.1",
}

# Copies jars of rootfs (symlinks resolved inside rootfs) to jars/ without the Class-Path and
# Main-Class lines of their manifests (absolute /usr/share/java paths that make javac and java
# load the machine's jars), and prints which file each is a copy of. Entries keep their order,
# timestamps, attributes and compression; only the manifest's bytes change. Copies the jni/
# libraries as files.
_PREPARE = '''\
import json, os, shutil, sys, zipfile

rootfs, plan = sys.argv[1], json.loads(sys.argv[2])

def resolve(path):
    """path, relative to rootfs, with its symlinks followed inside rootfs."""
    for _ in range(40):
        full = os.path.join(rootfs, path)
        if not os.path.islink(full):
            if not os.path.isfile(full):
                sys.exit("deb_java_repository: no file /" + path)
            return full
        target = os.readlink(full)
        if target.startswith("/"):
            path = target.lstrip("/")
        else:
            path = os.path.normpath(os.path.join(os.path.dirname(path), target))
    sys.exit("deb_java_repository: symlink loop at /" + path)

def strip_manifest(text):
    kept, skipping = [], False
    for line in text.splitlines(keepends=True):
        if line.startswith(" ") and skipping:
            continue
        skipping = line.lower().startswith(("class-path:", "main-class:"))
        if not skipping:
            kept.append(line)
    return "".join(kept)

def copy_jar(source, output):
    with zipfile.ZipFile(source) as jar, zipfile.ZipFile(output, "w") as out:
        for info in jar.infolist():
            data = jar.read(info)
            if info.filename == "META-INF/MANIFEST.MF":
                data = strip_manifest(data.decode("utf-8")).encode("utf-8")
            copy = zipfile.ZipInfo(info.filename, info.date_time)
            copy.compress_type = info.compress_type
            copy.comment = info.comment
            copy.extra = info.extra
            copy.create_system = info.create_system
            copy.create_version = info.create_version
            copy.extract_version = info.extract_version
            copy.internal_attr = info.internal_attr
            copy.external_attr = info.external_attr
            out.writestr(copy, data)
        out.comment = jar.comment

sources = {}
for name, path in sorted(plan["jars"].items()):
    os.makedirs("jars", exist_ok=True)
    source = resolve("usr/share/java/" + path)
    copy_jar(source, "jars/" + name + ".jar")
    sources[name] = "/" + os.path.relpath(source, rootfs)
for name, path in sorted(plan["jni"].items()):
    os.makedirs("jni", exist_ok=True)
    shutil.copyfile(resolve("usr/lib/x86_64-linux-gnu/" + path), "jni/" + name)
    os.chmod("jni/" + name, 0o755)
print(json.dumps(sources))
'''

# Runs a binary of rootfs with rootfs's libraries first on the library path. The script finds
# rootfs next to itself: in its own runfiles (a tool of an action, `bazel run`), in the runfiles
# tree it is part of (a test's data), or, last, next to the file it links to (the repository).
_WRAPPER = """\
#!/bin/sh
# {binary} of {package} {version} (Debian), with the .deb's libprotoc and libprotobuf: the
# machine's /usr/lib may have libraries of the same soname from another version.
set -eu
root=""
for candidate in "$0.runfiles/{repo}" "$(dirname "$0")" "${{RUNFILES_DIR:-/nonexistent}}/{repo}"; do
    if [ -x "$candidate/rootfs/{binary}" ]; then
        root="$candidate/rootfs"
        break
    fi
done
if [ -z "$root" ]; then
    root="$(dirname "$(readlink -f "$0")")/rootfs"
fi
root="$(cd "$root" && pwd)"
LD_LIBRARY_PATH="$root/usr/lib/x86_64-linux-gnu${{LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}}"
export LD_LIBRARY_PATH
exec "$root/{binary}" "$@"
"""

_BUILD = """\
# Generated by deb_java_repository from {lock}.

exports_files([
    "versions.json",
{jars}
])

# protoc of protobuf-compiler (the same version as jars/protobuf.jar) and grpc-java's plugin.
sh_binary(
    name = "protoc",
    srcs = ["protoc.sh"],
    data = [":protoc_files"],
    visibility = ["//visibility:public"],
)

sh_binary(
    name = "protoc-gen-grpc-java",
    srcs = ["protoc-gen-grpc-java.sh"],
    data = [":protoc_files"],
    visibility = ["//visibility:public"],
)

filegroup(
    name = "protoc_files",
    srcs = [
        "rootfs/usr/bin/grpc_java_plugin",
        "rootfs/usr/bin/protoc",
    ] + glob(["rootfs/usr/lib/x86_64-linux-gnu/libproto*.so*"]),
)

# jni/: libnetty_tcnative.so and the libraries it links, for -Djava.library.path and
# LD_LIBRARY_PATH.
filegroup(
    name = "tcnative_libs",
    srcs = glob(["jni/*"]),
    visibility = ["//visibility:public"],
)
"""

def _deb_java_repository_impl(rctx):
    lock = json.decode(rctx.read(rctx.path(rctx.attr.lock)))
    versions = {}
    for package in lock["packages"]:
        name = package["name"]
        rctx.report_progress("Fetching " + name)
        unpack_deb(rctx, package, "rootfs")
        versions[name] = package["version"]
    for path in ["rootfs/usr/share/doc", "rootfs/usr/share/man", "rootfs/usr/share/maven-repo"]:
        rctx.delete(path)

    python = rctx.which("python3")
    if not python:
        fail("{}: python3 is needed on PATH to prepare the jars".format(rctx.name))
    rctx.file("prepare.py", _PREPARE, executable = False)
    plan = json.encode({"jars": _JARS, "jni": _JNI})
    result = rctx.execute([python, "prepare.py", "rootfs", plan], timeout = 300)
    if result.return_code != 0:
        fail("{}: preparing the jars failed: {}{}".format(rctx.name, result.stdout, result.stderr))
    rctx.delete("prepare.py")
    jars = json.decode(result.stdout)

    wrappers = {
        "protoc": ("usr/bin/protoc", "protobuf-compiler"),
        "protoc-gen-grpc-java": ("usr/bin/grpc_java_plugin", "protobuf-compiler-grpc-java-plugin"),
    }
    for name, (binary, package) in wrappers.items():
        if package not in versions:
            fail("{}: {} is not in {}".format(rctx.name, package, rctx.attr.lock))
        rctx.file(name + ".sh", _WRAPPER.format(
            binary = binary,
            package = package,
            version = versions[package],
            repo = rctx.name,
        ), executable = True)
    rctx.file("versions.json", json.encode_indent(
        {"packages": versions, "jars": jars},
        indent = "  ",
    ) + "\n")
    rctx.file("jars.bzl", "# The names of this repository's :jars/<name>.jar.\nJARS = {}\n".format(
        json.encode(sorted(_JARS)),
    ))
    rctx.file("BUILD.bazel", _BUILD.format(
        lock = rctx.attr.lock,
        jars = "\n".join(['    "jars/{}.jar",'.format(name) for name in sorted(_JARS)]),
    ))

deb_java_repository = repository_rule(
    implementation = _deb_java_repository_impl,
    doc = """The Java parts of a gRPC client from a Debian lock (java/deps/debs.lock.json, written
by `./bazelw run //java/deps:lock`): every package is fetched by URL and sha256 with Bazel's
downloader and unpacked into `rootfs/`. Targets:

* `:jars/<name>.jar` (grpc-api, grpc-core, protobuf, guava, netty-*, ...): copies of the
  packages' jars, as files, with the `Class-Path` and `Main-Class` lines of their manifests
  removed (Debian's point at /usr/share/java of the machine).
* `:protoc`, `:protoc-gen-grpc-java`: the packages' protoc and grpc_java_plugin, run with the
  packages' libprotoc and libprotobuf first on LD_LIBRARY_PATH.
* `:tcnative_libs`: `jni/libnetty_tcnative.so` and the libraries it links (libapr, libuuid,
  libssl, libcrypto, libzstd), for `-Djava.library.path` and LD_LIBRARY_PATH.
* `jars.bzl`: `JARS`, the names of `:jars/<name>.jar`, for BUILD files that list them all.
* `:versions.json`: `{"packages": {name: Debian version}, "jars": {jar: the file of the
  package it is a copy of, e.g. "/usr/share/java/protobuf-3.21.12.jar"}}`.

The C and C++ runtime (libc, libstdc++, libgcc_s, libz) is the machine's.""",
    attrs = {
        "lock": attr.label(
            mandatory = True,
            allow_single_file = [".json"],
            doc = "JSON lock: `{\"packages\": [{\"name\", \"version\", \"sha256\", \"urls\"}]}`.",
        ),
    },
)
