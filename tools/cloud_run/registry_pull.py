"""Pulls an image by digest from a registry into an OCI image layout, as Cloud Run pulls a
revision's image: the manifest checked against the digest the Service names, every blob
against its descriptor. The layout is what oci_layout.Layout reads and unpacks.

Plain HTTP only to loopback registries (the local registry a release pushed to); HTTPS
elsewhere. Anonymous pulls only: the local Cloud Run holds no registry credentials.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import tempfile
import urllib.error
import urllib.request
from pathlib import Path

# An image reference pinned by digest, as the kit's manifests and `gcloud run` require.
_REFERENCE = re.compile(
    r"^(?P<registry>[a-z0-9.-]+(?::[0-9]+)?)/(?P<repository>[a-z0-9._/-]+)@(?P<digest>sha256:[0-9a-f]{64})$"
)
_MANIFEST_TYPES = (
    "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.v2+json",
)
_LOOPBACK = ("127.0.0.1", "localhost", "[::1]")
# A layer is read in pieces so that a large one never sits in memory whole.
_CHUNK = 1 << 20
_TIMEOUT_SECONDS = 60


class PullError(Exception):
    """The image cannot be pulled; the message says why (a revision's condition shows it)."""


def parse_reference(reference: str) -> tuple[str, str, str]:
    """(registry, repository, digest) of `REGISTRY/REPOSITORY@sha256:...`."""
    match = _REFERENCE.match(reference)
    if match is None:
        raise PullError(
            f"Image '{reference}' is not pinned by digest (REGISTRY/REPOSITORY@sha256:...)"
        )
    return match["registry"], match["repository"], match["digest"]


def _base_url(registry: str) -> str:
    host = registry.rsplit(":", 1)[0] if not registry.startswith("[") else registry
    scheme = "http" if host in _LOOPBACK else "https"
    return f"{scheme}://{registry}/v2"


def _open(url: str, accept: str | None = None):
    request = urllib.request.Request(url)
    if accept:
        request.add_header("Accept", accept)
    try:
        return urllib.request.urlopen(request, timeout=_TIMEOUT_SECONDS)
    except urllib.error.HTTPError as error:
        error.close()
        raise PullError(f"{url}: HTTP {error.code}") from None
    except OSError as error:
        raise PullError(f"{url}: {error}") from None


def _write_blob(layout: Path, digest: str, data_chunks) -> int:
    algorithm, hex_digest = digest.split(":")
    directory = layout / "blobs" / algorithm
    directory.mkdir(parents=True, exist_ok=True)
    target = directory / hex_digest
    hasher = hashlib.sha256()
    size = 0
    with tempfile.NamedTemporaryFile(dir=directory, delete=False) as temporary:
        for chunk in data_chunks:
            hasher.update(chunk)
            size += len(chunk)
            temporary.write(chunk)
    if hasher.hexdigest() != hex_digest:
        os.unlink(temporary.name)
        raise PullError(f"blob {digest} does not match its digest")
    os.replace(temporary.name, target)
    return size


def pull(reference: str, layout: Path) -> str:
    """Writes the image `reference` names into `layout` (an OCI image layout directory) and
    returns its manifest digest."""
    registry, repository, digest = parse_reference(reference)
    base = f"{_base_url(registry)}/{repository}"
    with _open(f"{base}/manifests/{digest}", ",".join(_MANIFEST_TYPES)) as response:
        media_type = response.headers.get("Content-Type", "").split(";")[0]
        body = response.read()
    if media_type not in _MANIFEST_TYPES:
        raise PullError(f"Image '{reference}' is a {media_type or 'document'}, not one image")
    layout.mkdir(parents=True, exist_ok=True)
    _write_blob(layout, digest, [body])
    manifest = json.loads(body)
    for descriptor in [manifest["config"], *manifest["layers"]]:
        with _open(f"{base}/blobs/{descriptor['digest']}") as response:
            size = _write_blob(
                layout, descriptor["digest"], iter(lambda r=response: r.read(_CHUNK), b"")
            )
        if size != descriptor["size"]:
            raise PullError(
                f"blob {descriptor['digest']} is {size} bytes, not {descriptor['size']}"
            )
    index = {
        "schemaVersion": 2,
        "manifests": [{"mediaType": media_type, "digest": digest, "size": len(body)}],
    }
    (layout / "oci-layout").write_text(json.dumps({"imageLayoutVersion": "1.0.0"}))
    (layout / "index.json").write_text(json.dumps(index))
    return digest
