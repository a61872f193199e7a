"""The SBOM artifact and the referrers index (bazel/tools/push/referrers.py), on the built images'
SBOMs: the artifact is the same bytes on every push, an SBOM of another image is refused, and the
index keeps what other tools listed, lists ours once, and is never made from something that is
not an index. push_sbom_test runs the same against a registry."""

from __future__ import annotations

import json
import os
from pathlib import Path

from absl.testing import absltest

from bazel.tools.push.layout import read_layout
from bazel.tools.push.referrers import (
    INDEX_MEDIA_TYPE,
    ReferrersError,
    SbomError,
    sbom_artifact,
    with_referrer,
)
from tests.deploy.oci_layout import image_outputs

PING_SBOM = Path(os.environ["PING_SBOM"])
ROUTE_GUIDE_SBOM = Path(os.environ["ROUTE_GUIDE_SBOM"])


class ReferrersTest(absltest.TestCase):
    @classmethod
    def setUpClass(cls) -> None:
        cls.ping = read_layout(image_outputs("IMAGE")[0])
        cls.artifact = sbom_artifact(PING_SBOM, cls.ping)

    def test_artifact_is_the_same_bytes_every_time(self) -> None:
        again = sbom_artifact(PING_SBOM, self.ping)
        self.assertEqual(again.manifest, self.artifact.manifest)
        manifest = json.loads(self.artifact.manifest)
        self.assertEqual(manifest["subject"]["digest"], self.ping.manifest_digest)
        self.assertEqual(manifest["subject"]["size"], len(self.ping.manifest))
        self.assertEqual([b.size for b in self.artifact.blobs], [2, PING_SBOM.stat().st_size])
        with self.artifact.blobs[0].open() as config:
            self.assertEqual(config.read(), b"{}")

    def test_sbom_of_another_image_is_refused(self) -> None:
        with self.assertRaisesRegex(SbomError, "describes image sha256:.*, but the image is"):
            sbom_artifact(ROUTE_GUIDE_SBOM, self.ping)

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
        for data, media_type in [
            (self.ping.manifest, self.ping.media_type),
            (b"\x00garbage", "application/octet-stream"),
            (json.dumps({"mediaType": docker_list, "manifests": []}).encode(), docker_list),
            (json.dumps({"mediaType": INDEX_MEDIA_TYPE, "manifests": {}}).encode(), ""),
            (b"[]", INDEX_MEDIA_TYPE),
        ]:
            with self.assertRaises(ReferrersError, msg=data[:40]):
                with_referrer((data, media_type), self.artifact)


if __name__ == "__main__":
    absltest.main()
