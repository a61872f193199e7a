"""Unpacking one package of a Debian lock in a repository rule."""

def unpack_deb(rctx, package, rootfs):
    """Downloads a locked .deb and unpacks its files under `rootfs`.

    Bazel's downloader fetches it from the lock's URLs in order (the pool first, then
    snapshot.debian.org) and checks its sha256; the .deb itself is not kept.

    Args:
      rctx: the repository rule's context.
      package: dict: one entry of the lock's `packages` (`name`, `urls`, `sha256`).
      rootfs: string: the directory, relative to the repository, to unpack into.
    """
    name = package["name"]
    deb = "debs/{}.deb".format(name)
    rctx.download(url = package["urls"], output = deb, sha256 = package["sha256"])

    # A .deb is an ar archive; its files are in data.tar.*.
    members = "members/" + name
    rctx.extract(deb, output = members)
    data = [f for f in rctx.path(members).readdir() if f.basename.startswith("data.tar")]
    if len(data) != 1:
        fail("{}: {} has no data.tar member".format(rctx.name, name))
    rctx.extract(data[0], output = rootfs)
    rctx.delete(members)
    rctx.delete(deb)
