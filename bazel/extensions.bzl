"""Module extensions of the kit, for MODULE.bazel.

`pip` installs a hashed requirements lock into a hub repository with one `py_library` per
distribution, labelled like rules_python's `pip.parse` hubs (`@pypi//grpcio`,
`@pypi//google_auth`), so a project can switch to `pip.parse` without touching BUILD files.
"""

load("//bazel/private:pip_hub_repository.bzl", "pip_hub_repository")

def _pip_impl(module_ctx):
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
            doc = "Interpreter that runs pip; wheels are chosen for it. Found on PATH, like the " +
                  "autodetecting Python toolchain's, so the wheels fit the Python that runs them.",
        ),
    },
)

pip = module_extension(
    implementation = _pip_impl,
    tag_classes = {"install": _install},
    doc = "Installs hashed requirements locks into hub repositories (see `install`).",
)
