"""Module extensions of the kit, for MODULE.bazel.

`deb` fetches the Debian packages of a lock for image layers (`packages`), the image's CPython
as the build's Python (`python`), and the jars, protoc and grpc-java plugin of a Java gRPC
client (`java`).

`pip` installs a hashed requirements lock into a hub repository with one `py_library` per
distribution, labelled like rules_python's `pip.parse` hubs (`@pypi//grpcio`,
`@pypi//google_auth`), so a project can switch to `pip.parse` without touching BUILD files.
"""

load("//bazel/private:build_host.bzl", "require_linux_x86_64")
load("//bazel/private:deb_java_repository.bzl", "deb_java_repository")
load("//bazel/private:deb_packages_repository.bzl", "deb_packages_repository")
load("//bazel/private:deb_python_repository.bzl", "deb_python_repository")
load("//bazel/private:pip_hub_repository.bzl", "pip_hub_repository")
load("//bazel/private:pip_target_repository.bzl", "pip_target_repository")

# Debian 13 on amd64 (glibc 2.41): the image's machine, and the wheels the tests run with.
_IMAGE_PLATFORMS = ["manylinux_2_41_x86_64"]

def _pip_impl(module_ctx):
    require_linux_x86_64(module_ctx)
    hubs = {}
    for mod in module_ctx.modules:
        for install in mod.tags.install:
            if install.hub in hubs:
                fail("pip.install: hub '{}' is declared twice".format(install.hub))
            hubs[install.hub] = install
            pip_hub_repository(
                name = install.hub,
                requirements_lock = install.requirements_lock,
                python_interpreter = install.python_interpreter,
                python_version = install.python_version,
                platforms = install.platforms,
            )
        for target in mod.tags.target:
            pip_target_repository(
                name = target.name,
                requirements_lock = target.requirements_lock,
                roots = target.roots,
                python_version = target.python_version,
                platforms = target.platforms,
            )

_install = tag_class(
    doc = "Installs one requirements lock as a hub repository.",
    attrs = {
        "hub": attr.string(
            mandatory = True,
            doc = "Name of the hub repository, e.g. `pypi` for `@pypi//grpcio`.",
        ),
        "requirements_lock": attr.label(
            mandatory = True,
            doc = "A lock file with `name==version` pins and `--hash` lines for every distribution.",
        ),
        "python_interpreter": attr.string(
            default = "python3",
            doc = "Interpreter, found on PATH, that runs pip; wheels are chosen for it unless " +
                  "`python_version` names another.",
        ),
        "python_version": attr.string(
            doc = "CPython the wheels are for, e.g. `3.13`: the build's Python toolchain's, " +
                  "when that is not the interpreter running pip.",
        ),
        "platforms": attr.string_list(
            default = _IMAGE_PLATFORMS,
            doc = "pip --platform tags of the toolchain's machine, with `python_version`.",
        ),
    },
)

_target = tag_class(
    doc = "Installs what `roots` need from a lock for another platform, e.g. a container image.",
    attrs = {
        "name": attr.string(mandatory = True, doc = "Repository name; `@name//:packages`."),
        "requirements_lock": attr.label(mandatory = True, doc = "The hashed lock."),
        "roots": attr.string_list(
            doc = "Distributions to install, with what they need; default: the whole lock " +
                  "(each image then takes what its binary imports: py_packages_layer).",
        ),
        "python_version": attr.string(default = "3.13", doc = "The target's CPython version."),
        "platforms": attr.string_list(
            default = _IMAGE_PLATFORMS,
            doc = "pip --platform tags of the target, Linux (Debian 13 has glibc 2.41).",
        ),
    },
)

pip = module_extension(
    implementation = _pip_impl,
    tag_classes = {"install": _install, "target": _target},
    doc = "Installs hashed requirements locks into repositories (see `install` and `target`).",
)

def _deb_impl(module_ctx):
    require_linux_x86_64(module_ctx)
    for mod in module_ctx.modules:
        for packages in mod.tags.packages:
            deb_packages_repository(name = packages.name, lock = packages.lock)
        for python in mod.tags.python:
            deb_python_repository(
                name = python.name,
                lock = python.lock,
                packages = python.packages,
                interpreter = python.interpreter,
                library_path = python.library_path,
                loader = python.loader,
            )
        for java in mod.tags.java:
            deb_java_repository(name = java.name, lock = java.lock)

deb = module_extension(
    implementation = _deb_impl,
    tag_classes = {
        "packages": tag_class(
            doc = "The .deb files of a lock (write it with `./bazelw run //deploy/base:lock`).",
            attrs = {
                "name": attr.string(mandatory = True, doc = "Repository name; `@name//:debs`."),
                "lock": attr.label(mandatory = True, doc = "The JSON lock."),
            },
        ),
        "python": tag_class(
            doc = "The lock's CPython as the build's Python toolchain (`@name//:toolchain`).",
            attrs = {
                "name": attr.string(mandatory = True, doc = "Repository name."),
                "lock": attr.label(mandatory = True, doc = "The JSON lock."),
                "packages": attr.string_list(
                    mandatory = True,
                    doc = "Packages of the interpreter, its standard library, the loader and " +
                          "the shared libraries they load.",
                ),
                "interpreter": attr.string(mandatory = True, doc = "Its path, e.g. /usr/bin/python3.13."),
                "library_path": attr.string(
                    mandatory = True,
                    doc = "The image's shared libraries, e.g. /usr/lib/x86_64-linux-gnu.",
                ),
                "loader": attr.string(
                    mandatory = True,
                    doc = "Its dynamic loader there, e.g. ld-linux-x86-64.so.2.",
                ),
            },
        ),
        "java": tag_class(
            doc = "grpc-java's jars, protoc and protoc-gen-grpc-java of a lock (write it with " +
                  "`./bazelw run //java/deps:lock`): `@name//:jars/grpc-core.jar`, " +
                  "`@name//:protoc`, `@name//:protoc-gen-grpc-java`, `@name//:tcnative_libs`.",
            attrs = {
                "name": attr.string(mandatory = True, doc = "Repository name."),
                "lock": attr.label(mandatory = True, doc = "The JSON lock."),
            },
        ),
    },
    doc = "Debian packages pinned by a lock, fetched and checksum-verified by Bazel.",
)
