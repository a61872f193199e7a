"""py_packages_layer: the third-party packages a py_binary imports, and only those."""

load(":bytecode.bzl", "BYTECODE_ATTRS", "ImagePythonInfo")
load(":files_layer.bzl", "pack_files_layer")
load(":oci_layer_info.bzl", "OciLayerInfo")
load(":pip_image_packages.bzl", "PipImagePackagesInfo")

# The tag a pip hub's libraries carry (write_hub_build_files.py): `pip_distribution=NAME==VERSION`.
_TAG = "pip_distribution="

_PipDistributionsInfo = provider(
    doc = "The pip distributions a target depends on, from the tags of the hub libraries.",
    fields = {"pins": "depset of `name==version` (names as hub labels spell them)"},
)

def _pip_distributions_impl(_target, ctx):
    direct = [tag[len(_TAG):] for tag in ctx.rule.attr.tags if tag.startswith(_TAG)]
    return [_PipDistributionsInfo(pins = depset(direct, transitive = [
        dep[_PipDistributionsInfo].pins
        for dep in getattr(ctx.rule.attr, "deps", [])
        if _PipDistributionsInfo in dep
    ]))]

# Along `deps`, as the tests see them: what the binary imports in a test is what its image has.
_pip_distributions = aspect(
    implementation = _pip_distributions_impl,
    attr_aspects = ["deps"],
    doc = "Collects the `@pypi//...` distributions (hub libraries) a py_binary depends on.",
)

def _label(label):
    """A label as users write it: `//pkg:name` for this repository's."""
    text = str(label)
    return text[len("@@"):] if text.startswith("@@//") else text

def _closure(packages, pins, layer, binary):
    """Names of the distributions `pins` need, with what those need; fails naming any missing."""
    problems, todo = [], []
    for pin in sorted(pins):
        name, _, version = pin.partition("==")
        if name in packages.unavailable:
            problems.append("{}: {}".format(pin, packages.unavailable[name]))
        elif name not in packages.versions:
            problems.append("{}: not in the image's lock".format(pin))
        elif packages.versions[name] != version:
            problems.append("{}: the image's lock has {}".format(pin, packages.versions[name]))
        else:
            todo.append(name)
    if problems:
        fail(("py_packages_layer {}: {} depends on pip distributions that cannot go in its " +
              "image (lock {}):\n  {}").format(
            _label(layer),
            _label(binary),
            packages.lock,
            "\n  ".join(problems),
        ))
    needed = {}
    for _ in range(len(packages.versions) + 1):  # no while in Starlark: a chain is no longer
        if not todo:
            break
        found = []
        for name in todo:
            if name not in needed:
                needed[name] = True
                found.extend(packages.requires.get(name, []))
        todo = found
    return sorted(needed)

def _py_packages_layer_impl(ctx):
    packages = ctx.attr.packages[PipImagePackagesInfo]
    binary = ctx.attr.binary
    names = _closure(packages, binary[_PipDistributionsInfo].pins.to_list(), ctx.label, binary.label)
    pythons = [layer[ImagePythonInfo] for layer in ctx.attr.base_layers if ImagePythonInfo in layer]
    files = depset(transitive = [packages.files[name] for name in names]).to_list()
    return pack_files_layer(
        ctx,
        files,
        ctx.attr.directory,
        strip_prefix = "site-packages",
        python = pythons[-1] if pythons else None,
        install_reports = [packages.install_report],
    )

py_packages_layer = rule(
    implementation = _py_packages_layer_impl,
    doc = """The third-party Python packages of a py_binary, as a layer: the distributions of
the pip hub (`@pypi//...`) it depends on, found by an aspect along its `deps`, with what they
need in the lock, installed for the image's platform (`packages`). So the image holds what the
tests imported, at the same versions, and no hand-kept list can drift from it.

Analysis fails, naming each one, when a distribution the binary depends on cannot go in: not in
the image's lock, at another version there, or excluded from the image's platform by its
marker. Two binaries with the same distributions get byte-identical layers (one blob in a
registry). pip's install report goes with the layer, for the image's SBOM.""",
    attrs = BYTECODE_ATTRS | {
        "binary": attr.label(
            mandatory = True,
            aspects = [_pip_distributions],
            doc = "The py_binary whose third-party packages go in.",
        ),
        "packages": attr.label(
            mandatory = True,
            providers = [PipImagePackagesInfo],
            doc = "The lock installed for the image: a pip target repository's `:packages`, " +
                  "e.g. `@pypi_image//:packages`.",
        ),
        "directory": attr.string(
            default = "/usr/lib/python3/dist-packages",
            doc = "Where in the image; the default is on the sys.path of Debian's python3.",
        ),
        "base_layers": attr.label_list(
            providers = [OciLayerInfo],
            doc = "The layers it goes on; the Python one ships (a deb_layer's `python`) " +
                  "compiles its bytecode. Without one, no bytecode.",
        ),
        "_tool": attr.label(default = "//bazel/tools:files_layer", executable = True, cfg = "exec"),
    },
)
