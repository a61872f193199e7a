"""pip_image_packages: the distributions a pip target repository installed for an image."""

PipImagePackagesInfo = provider(
    doc = """What a lock gives an image: each distribution installed for the image's platform,
and each pin that is not, with why. Keys are names as hub labels spell them (`google_auth`).""",
    fields = {
        "files": "dict: name -> depset of its installed files (its wheel's RECORD)",
        "versions": "dict: name -> version, for those installed",
        "requires": "dict: name -> list of names it needs (the lock's `# via`)",
        "unavailable": "dict: name -> why it is not installed, e.g. its marker",
        "install_report": "File: pip's install report, each wheel's URL and sha256",
        "lock": "string: the lock's label, for messages",
    },
)

def _pip_image_packages_impl(ctx):
    files, versions = {}, {}
    for target, pin in ctx.attr.distributions.items():
        name, _, version = pin.partition("==")
        files[name] = target[DefaultInfo].files
        versions[name] = version
    return [PipImagePackagesInfo(
        files = files,
        versions = versions,
        requires = ctx.attr.requires,
        unavailable = ctx.attr.unavailable,
        install_report = ctx.file.install_report,
        lock = ctx.attr.lock,
    )]

pip_image_packages = rule(
    implementation = _pip_image_packages_impl,
    doc = """Written by pip_target_repository (`@pypi_image//:packages`), for py_packages_layer:
the lock's distributions as installed for the image, so that each image takes the closure of
what its binary imports.""",
    attrs = {
        "distributions": attr.label_keyed_string_dict(
            allow_files = True,
            doc = "Each distribution's files -> `name==version`.",
        ),
        "requires": attr.string_list_dict(doc = "name -> names it needs."),
        "unavailable": attr.string_dict(doc = "name -> why it is not installed."),
        "install_report": attr.label(allow_single_file = [".json"], mandatory = True, doc = "pip's report."),
        "lock": attr.string(mandatory = True, doc = "The lock's label, for messages."),
    },
)
