"""The SBOM artifact and the referrers index (bazel/tools/push/referrers.py), on the kit's test
service's image and SBOM: the artifact is the same bytes on every push, an SBOM of another image
is refused, and the index keeps what other tools listed, lists ours once, and is never made from
something that is not an index. push_sbom_test runs the same against a registry."""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path

from absl.testing import absltest

from bazel.tools.oci import EMPTY_DIGEST, sha256_digest
from bazel.tools.oci import INDEX as INDEX_MEDIA_TYPE
from bazel.tools.oci_layout import image_outputs
from bazel.tools.push.layout import read_layout
from bazel.tools.push.referrers import (
    ReferrersError,
    SbomError,
    sbom_artifact,
    with_referrer,
)

SBOM = Path(os.environ["SBOM"])


class ReferrersTest(absltest.TestCase):
    @classmethod
    def setUpClass(cls) -> None:
        cls.image = read_layout(image_outputs("IMAGE")[0])
        cls.artifact = sbom_artifact(SBOM, cls.image)

    def test_artifact_manifest(self) -> None:
        sbom = SBOM.read_bytes()
        self.assertEqual(
            json.loads(self.artifact.manifest),
            {
                "schemaVersion": 2,
                "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "artifactType": "application/spdx+json",
                "config": {
                    "mediaType": "application/vnd.oci.empty.v1+json",
                    "digest": EMPTY_DIGEST,
                    "size": 2,
                    "data": "e30=",
                },
                "layers": [
                    {
                        "mediaType": "application/spdx+json",
                        "digest": sha256_digest(sbom),
                        "size": len(sbom),
                        "annotations": {"org.opencontainers.image.title": SBOM.name},
                    }
                ],
                "subject": {
                    "mediaType": self.image.media_type,
                    "digest": self.image.manifest_digest,
                    "size": len(self.image.manifest),
                },
            },
        )
        self.assertEqual(self.artifact.manifest_digest, sha256_digest(self.artifact.manifest))
        config, layer = self.artifact.blobs
        with config.open() as stream:
            self.assertEqual(stream.read(), b"{}")
        with layer.open() as stream:
            self.assertEqual(stream.read(), sbom)
        # No clock, no randomness: made again, the same bytes.
        self.assertEqual(sbom_artifact(SBOM, self.image).manifest, self.artifact.manifest)

    def test_sbom_of_another_image_or_malformed_is_refused(self) -> None:
        directory = Path(tempfile.mkdtemp(dir=os.environ.get("TEST_TMPDIR")))
        # Another image's SBOM: this one with every mention of the image's digest changed.
        other = hashlib.sha256(b"another image").hexdigest()
        ours = self.image.manifest_digest.removeprefix("sha256:")
        another = directory / "another.spdx.json"
        another.write_text(SBOM.read_text().replace(ours, other))
        with self.assertRaisesRegex(SbomError, f"describes image sha256:{other}, but the image is"):
            sbom_artifact(another, self.image)
        for document in [
            [],
            {"relationships": 5, "packages": "x"},
            {"relationships": [1, None], "packages": [{"checksums": [{"algorithm": "SHA256"}]}]},
            "[" * 100_000,
        ]:
            malformed = directory / "malformed.spdx.json"
            text = document if isinstance(document, str) else json.dumps(document)
            malformed.write_text(text)
            with self.assertRaises(SbomError, msg=text[:60]):
                sbom_artifact(malformed, self.image)

    def test_new_index_then_listed_once(self) -> None:
        index = with_referrer(None, self.artifact)
        assert index is not None
        document = json.loads(index)
        self.assertEqual(document["mediaType"], INDEX_MEDIA_TYPE)
        self.assertEqual(
            document["manifests"],
            [
                {
                    "mediaType": self.artifact.media_type,
                    "digest": self.artifact.manifest_digest,
                    "size": len(self.artifact.manifest),
                    "artifactType": "application/spdx+json",
                }
            ],
        )
        self.assertIsNone(with_referrer((index, INDEX_MEDIA_TYPE), self.artifact))

    def test_other_referrers_and_annotations_are_kept(self) -> None:
        other = {"mediaType": "x", "digest": "sha256:" + "1" * 64, "size": 3, "artifactType": "y"}
        current = {
            "schemaVersion": 2,
            "mediaType": INDEX_MEDIA_TYPE,
            "manifests": [other],
            "annotations": {"kept": "yes"},
        }
        index = with_referrer((json.dumps(current).encode(), INDEX_MEDIA_TYPE), self.artifact)
        assert index is not None
        document = json.loads(index)
        self.assertEqual(document["annotations"], {"kept": "yes"})
        self.assertEqual(document["manifests"][0], other)
        self.assertLen(document["manifests"], 2)

    def test_what_is_not_an_index_is_refused(self) -> None:
        docker_list = "application/vnd.docker.distribution.manifest.list.v2+json"

        def index(**fields: object) -> bytes:
            return json.dumps(
                {"schemaVersion": 2, "mediaType": INDEX_MEDIA_TYPE, **fields}
            ).encode()

        for data, media_type in [
            (self.image.manifest, self.image.media_type),
            (b"\x00garbage", "application/octet-stream"),
            (b"\x00garbage", INDEX_MEDIA_TYPE),  # the header alone does not make an index
            (b"<html>log in</html>", INDEX_MEDIA_TYPE),
            (json.dumps({"mediaType": docker_list, "manifests": []}).encode(), docker_list),
            (index(manifests={}), INDEX_MEDIA_TYPE),
            (index(manifests=[1, None, "x"]), INDEX_MEDIA_TYPE),
            (index(manifests=[{"digest": 5, "mediaType": "m", "size": 1}]), INDEX_MEDIA_TYPE),
            (index(schemaVersion=1, manifests=[]), INDEX_MEDIA_TYPE),
            (b"[]", INDEX_MEDIA_TYPE),
            (b"[" * 100_000, INDEX_MEDIA_TYPE),
        ]:
            with self.assertRaises(ReferrersError, msg=data[:40]):
                with_referrer((data, media_type), self.artifact)

    def test_index_media_type_from_a_header_with_parameters(self) -> None:
        # An index that names its type only in a Content-Type with parameters is still one.
        data = json.dumps({"schemaVersion": 2, "manifests": []}).encode()
        index = with_referrer((data, INDEX_MEDIA_TYPE + "; charset=utf-8"), self.artifact)
        assert index is not None
        self.assertLen(json.loads(index)["manifests"], 1)


if __name__ == "__main__":
    absltest.main()
