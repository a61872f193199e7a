"""An image's SBOM as an OCI artifact that refers to the image, and the referrers tag fallback.

OCI 1.1 ties an artifact to an image with its manifest's `subject`. A registry with the referrers
API (`GET /v2/NAME/referrers/DIGEST`) indexes such a manifest itself and says so with an
`OCI-Subject` header on the PUT. A registry without it (Debian's distribution 2.8, older
mirrors) needs the client to keep the list: an image index tagged `sha256-<image digest hex>`,
the distribution spec's referrers tag schema, which `oras discover` and other OCI 1.1 clients
read when the API is not there. This module makes the artifact and updates that index; the
pushing (pushing.py) decides which of the two the registry needs.

The artifact is made from the SBOM file (its bytes and name) and the image's manifest, with no
creation time, so a second push of an image lists it once. An SBOM that changes for an
unchanged image (a newer SBOM tool) is a second SPDX referrer, listed beside the first: both
describe that image, and the index keeps whatever it lists.

Whatever the registry sends back for the referrers tag is read defensively: a body that is not
a JSON image index of well-formed descriptors (or is larger than a manifest may be, see
transport.MANIFEST) is refused and the tag left as it is, never overwritten.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

from bazel.tools import oci
from bazel.tools.oci import canonical_json, sha256_digest
from bazel.tools.push.layout import Blob, Image
from bazel.tools.push.registry_errors import printable

SBOM_MEDIA_TYPE = "application/spdx+json"
EMPTY_CONFIG = Blob.of(oci.EMPTY_CONTENT)
TITLE = "org.opencontainers.image.title"
# What a GET of the referrers tag accepts: every manifest type, so that a tag that holds
# something other than an index is seen as what it is and left alone.
ANY_MANIFEST = ", ".join(
    [
        oci.INDEX,
        oci.MANIFEST,
        oci.ARTIFACT_MANIFEST,
        oci.DOCKER_MANIFEST_LIST,
        oci.DOCKER_MANIFEST,
        oci.DOCKER_SIGNED_MANIFEST,
    ]
)


class SbomError(ValueError):
    """The SBOM file cannot be read, or it does not describe the image it would be pushed with."""


class ReferrersError(ValueError):
    """The referrers tag holds something that is not a referrers index: left as it is."""


def _dicts(value: object) -> list[dict[str, Any]]:
    """The dicts of a JSON list; nothing when it is not one."""
    return [item for item in value if isinstance(item, dict)] if isinstance(value, list) else []


def described_digest(document: object) -> str | None:
    """The image digest an SPDX document from oci_sbom describes: the SHA256 checksum of the
    package its SPDXRef-DOCUMENT DESCRIBES; None when it describes none."""
    if not isinstance(document, dict):
        return None
    described = {
        r.get("relatedSpdxElement")
        for r in _dicts(document.get("relationships"))
        if r.get("spdxElementId") == "SPDXRef-DOCUMENT" and r.get("relationshipType") == "DESCRIBES"
    }
    for package in _dicts(document.get("packages")):
        if package.get("SPDXID") in described:
            for checksum in _dicts(package.get("checksums")):
                value = checksum.get("checksumValue")
                if checksum.get("algorithm") == "SHA256" and isinstance(value, str):
                    return f"sha256:{value}"
    return None


def sbom_artifact(path: Path, image: Image) -> Image:
    """The artifact that attaches the SPDX document at `path` to `image`: an image manifest of
    artifactType application/spdx+json, an empty config, the document as its one layer
    (titled with the file's name), `image` as its subject. Raises SbomError when the file is
    unreadable or describes another image."""
    try:
        data = path.read_bytes()
        document = json.loads(data)
    except (OSError, ValueError, RecursionError) as error:
        raise SbomError(f"cannot read the SBOM {path}: {error}") from None
    described = described_digest(document)
    if described != image.manifest_digest:
        raise SbomError(
            f"the SBOM {path.name} describes image {described}, but the image is "
            f"{image.manifest_digest}"
        )
    layer = Blob(sha256_digest(data), len(data), path=path)
    manifest = canonical_json(
        {
            "schemaVersion": 2,
            "mediaType": oci.MANIFEST,
            "artifactType": SBOM_MEDIA_TYPE,
            "config": {
                "mediaType": oci.EMPTY,
                "digest": EMPTY_CONFIG.digest,
                "size": EMPTY_CONFIG.size,
                # Inline, so clients need not fetch it.
                "data": base64.b64encode(EMPTY_CONFIG.data or b"").decode(),
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
    return Image(manifest, sha256_digest(manifest), oci.MANIFEST, [EMPTY_CONFIG, layer])


def referrers_tag(image_digest: str) -> str:
    """The tag of an image's referrers index under the tag schema: `sha256-<hex>`."""
    algorithm, _, hex_digest = image_digest.partition(":")
    return f"{algorithm}-{hex_digest}"


def descriptor(artifact: Image) -> dict[str, Any]:
    """How a referrers index lists `artifact`: its descriptor, with the artifact type (else
    its config's media type) and its annotations, as the distribution spec asks."""
    manifest = json.loads(artifact.manifest)
    listed = {
        "mediaType": artifact.media_type,
        "digest": artifact.manifest_digest,
        "size": len(artifact.manifest),
        "artifactType": manifest.get("artifactType") or manifest["config"]["mediaType"],
    }
    if manifest.get("annotations"):
        listed["annotations"] = manifest["annotations"]
    return listed


def read_index(data: bytes, media_type: str) -> dict[str, Any]:
    """The referrers index the tag holds, checked: JSON, schemaVersion 2, the index media
    type, a list of descriptors; raises ReferrersError otherwise."""
    # The registry's words, shown to the user: escaped and capped (printable).
    content_type = printable(media_type.split(";")[0].strip())
    try:
        index = json.loads(data)
    except (ValueError, RecursionError):
        raise ReferrersError(f"it holds {content_type or 'a document'} that is not JSON") from None
    if not isinstance(index, dict):
        raise ReferrersError(f"it holds {content_type or 'a document'}, not an OCI index")
    kind = index.get("mediaType", content_type)
    if kind != oci.INDEX or index.get("schemaVersion") != 2:
        shown = printable(str(kind)) if kind else "a document"
        raise ReferrersError(f"it holds {shown}, not an OCI index")
    manifests = index.get("manifests", [])
    if not isinstance(manifests, list) or not all(map(_is_descriptor, manifests)):
        raise ReferrersError("it holds an OCI index whose manifests are not all descriptors")
    return index


def _is_descriptor(value: object) -> bool:
    return (
        isinstance(value, dict)
        and isinstance(value.get("mediaType"), str)
        and isinstance(value.get("digest"), str)
        and isinstance(value.get("size"), int)
    )


def with_referrer(current: tuple[bytes, str] | None, artifact: Image) -> bytes | None:
    """The referrers index (`current`: its bytes and media type, None when the tag is not
    there yet) with `artifact` listed, every other referrer and field kept; None when it is
    listed already (nothing to put). Raises ReferrersError when the tag holds something else."""
    index: dict[str, Any] = {"schemaVersion": 2, "mediaType": oci.INDEX, "manifests": []}
    if current is not None:
        index = read_index(*current)
        listed = [d["digest"] for d in index.get("manifests", [])]
        if artifact.manifest_digest in listed:
            return None
    index["manifests"] = [*index.get("manifests", []), descriptor(artifact)]
    index["mediaType"] = oci.INDEX
    return canonical_json(index)
