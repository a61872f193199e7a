"""Repository rule: the .deb files of a lock (deploy/base/debs.lock.json), checksum-verified."""

def _deb_packages_repository_impl(rctx):
    lock = json.decode(rctx.read(rctx.path(rctx.attr.lock)))
    names = []
    for package in lock["packages"]:
        name = "{}_{}.deb".format(package["name"], package["version"].replace(":", "%3a"))
        rctx.report_progress("Fetching " + name)

        # Bazel's downloader: URLs in order (the pool first, then snapshot.debian.org, which
        # keeps the version after the pool drops it), sha256 checked, repository cache.
        rctx.download(
            url = package["urls"],
            output = "debs/" + name,
            sha256 = package["sha256"],
        )
        names.append("debs/" + name)
    rctx.file("BUILD.bazel", """\
filegroup(
    name = "debs",
    srcs = {},
    visibility = ["//visibility:public"],
)
""".format(json.encode_indent(sorted(names), indent = "    ")))

deb_packages_repository = repository_rule(
    implementation = _deb_packages_repository_impl,
    doc = """Downloads every package of a Debian lock with Bazel's downloader and exposes them as
`:debs`. The lock pins name, version, the suite the version came from (`trixie`,
`trixie-updates` or `trixie-security`), sha256 and URLs (the deb.debian.org or
security.debian.org pool first, snapshot.debian.org second); write it with
`./bazelw run //deploy/base:lock`, which resolves it from Debian's signed indexes.""",
    attrs = {
        "lock": attr.label(
            mandatory = True,
            allow_single_file = [".json"],
            doc = "JSON lock: `{\"packages\": [{\"name\", \"version\", \"suite\", \"sha256\", " +
                  "\"urls\"}]}` (`suite` is informational; other fields are ignored).",
        ),
    },
)
