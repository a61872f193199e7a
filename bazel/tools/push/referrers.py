"""An image's SBOM as an OCI artifact that refers to the image, and the referrers tag fallback.

OCI 1.1 ties an artifact to an image with its manifest's `subject`. A registry with the referrers
API (`GET /v2/NAME/referrers/DIGEST`) indexes such a manifest itself and says so with an
`OCI-Subject` header on the PUT. A registry without it (Debian's distribution 2.8, older
mirrors) needs the client to keep the list: an image index tagged `sha256-<image digest hex>`,
the distribution spec's referrers tag schema, which `oras discover` and other OCI 1.1 clients
read when the API is not there. This module makes the artifact and updates that index; the
pushing (pushing.py) decides which of the two the registry needs.

The artifact is made from the SBOM's bytes alone, so the same SBOM gives the same artifact
digest on every push (no creation time), and a second push of an image lists it once.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from bazel.tools.push.layout import Blob, Image

SBOM_MEDIA_TYPE = "application/spdx+json"
MANIFEST_MEDIA_TYPE = "application/vnd.oci.image.manifest.v1+json"
INDEX_MEDIA_TYPE = "application/vnd.oci.image.index.v1+json"
EMPTY_MEDIA_TYPE = "application/vnd.oci.empty.v1+json"  # the config of an artifact
# What a GET of the referrers tag accepts: whatever is there, so that a tag that holds something
# else is seen and left alone (a registry answers 404 for a type the client does not accept).
ANY_MANIFEST = ", ".join(
    [
        INDEX_MEDIA_TYPE,
        MANIFEST_MEDIA_TYPE,
        "application/vnd.docker.distribution.manifest.list.v2+json",
        "application/vnd.docker.distribution.manifest.v2+json",
    ]
)
TITLE = "org.opencontainers.image.title"


class SbomError(ValueError):
    """The SBOM file cannot be read, or it does not describe the image it would be pushed with."""


class ReferrersError(ValueError):
    """The referrers tag holds something that is not a referrers index: left as it is."""


def encode(document: dict) -> bytes:
    """Compact JSON with sorted keys: the same document, the same bytes and digest."""
    return json.dumps(document, sort_keys=True, separators=(",", ":")).encode()


def digest_of(data: bytes) -> str:
    return f"sha256:{hashlib.sha256(data).hexdigest()}"


def described_digest(document: dict) -> str | None:
    """The image digest an SPDX document from oci_sbom describes: the SHA256 checksum of the
    package its SPDXRef-DOCUMENT DESCRIBES."""
    described = {
        r.get("relatedSpdxElement")
        for r in document.get("relationships", [])
        if r.get("spdxElementId") == "SPDXRef-DOCUMENT" and r.get("relationshipType") == "DESCRIBES"
    }
    for package in document.get("packages", []):
        if package.get("SPDXID") in described:
            for checksum in package.get("checksums", []):
                if checksum.get("algorithm") == "SHA256":
                    return f"sha256:{checksum['checksumValue']}"
    return None


def sbom_artifact(path: Path, image: Image) -> Image:
    """The artifact that attaches the SPDX document at `path` to `image`: an image manifest of
    artifactType application/spdx+json, an empty config, the document as its one layer
    (titled with the file's name), `image` as its subject. Raises SbomError when the file is
    unreadable or describes another image."""
    try:
        data = path.read_bytes()
        document = json.loads(data)
    except (OSError, ValueError) as error:
        raise SbomError(f"cannot read the SBOM {path}: {error}") from None
    described = described_digest(document) if isinstance(document, dict) else None
    if described != image.manifest_digest:
        raise SbomError(
            f"the SBOM {path.name} describes image {described}, but the image is "
            f"{image.manifest_digest}"
        )
    config = Blob.of(b"{}")
    layer = Blob(digest_of(data), len(data), path=path)
    manifest = encode(
        {
            "schemaVersion": 2,
            "mediaType": MANIFEST_MEDIA_TYPE,
            "artifactType": SBOM_MEDIA_TYPE,
            "config": {
                "mediaType": EMPTY_MEDIA_TYPE,
                "digest": config.digest,
                "size": config.size,
                "data": "e30=",  # base64 of `{}`: clients need not fetch the empty config
            },
            "layers": [
                {
                    "mediaType": SBOM_MEDIA_TYPE,
                    "digest": layer.digest,
                    "size": layer.size,
                    "annotations": {TITLE: path.name},
                }
            ],
            "subject": {
                "mediaType": image.media_type,
                "digest": image.manifest_digest,
                "size": len(image.manifest),
            },
        }
    )
    return Image(manifest, digest_of(manifest), MANIFEST_MEDIA_TYPE, [config, layer])


def referrers_tag(image_digest: str) -> str:
    """The tag of an image's referrers index under the tag schema: `sha256-<hex>`."""
    algorithm, _, hex_digest = image_digest.partition(":")
    return f"{algorithm}-{hex_digest}"


def with_referrer(current: tuple[bytes, str] | None, artifact: Image) -> bytes | None:
    """The referrers index (`current`: its bytes and media type, None when the tag is not
    there yet) with `artifact` listed, every other referrer kept; None when it is listed
    already (nothing to put). Raises ReferrersError when the tag holds something else."""
    index: dict = {"schemaVersion": 2, "mediaType": INDEX_MEDIA_TYPE}
    if current is not None:
        data, media_type = current
        try:
            index = json.loads(data)
        except ValueError:
            index = {}
        if (
            not isinstance(index, dict)
            or index.get("mediaType", media_type) != INDEX_MEDIA_TYPE
            or not isinstance(index.get("manifests", []), list)
        ):
            raise ReferrersError(f"it holds {media_type or 'a document'}, not an OCI index")
        listed = [d.get("digest") for d in index.get("manifests", []) if isinstance(d, dict)]
        if artifact.manifest_digest in listed:
            return None
    manifest = json.loads(artifact.manifest)
    index["manifests"] = [
        *index.get("manifests", []),
        {
            "mediaType": artifact.media_type,
            "digest": artifact.manifest_digest,
            "size": len(artifact.manifest),
            "artifactType": manifest["artifactType"],
        },
    ]
    return encode(index)
