"""`bazel run //deploy:push` attaches each image's SBOM as an OCI artifact whose subject is the
image, so that a release pipeline finds it next to what it deploys.

Debian's registry (distribution 2.8) has no referrers API, so the push keeps the referrers index
under the tag schema (`sha256-<hex>`). What is checked, with clients that are not the push's:
skopeo reads the index and the artifact, and `discover` below follows the distribution spec as
`oras discover` does (the referrers API, then the tag). Also: a second push lists the SBOM once
and keeps the other referrers; a registry that answers `OCI-Subject` (referrers API) gets no
tag; a refused SBOM leaves the image untagged and its manifest file unwritten; a referrers tag
that holds something else is not overwritten; an SBOM of another image is bad input;
`--no_sbom` leaves it out.
"""

from __future__ import annotations

import json
import os
import subprocess
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

from absl.testing import absltest

from bazel.tools.oci import EMPTY, EMPTY_DIGEST, INDEX, MANIFEST, sha256_digest
from tests.deploy.flaky_proxy import FlakyProxy
from tests.deploy.push_services import PUSH_ALL, ServicesPushTestCase
from tests.deploy.pushing import run_push

SBOMS = {
    "kittest": Path(os.environ["KITTEST_SBOM"]).resolve(),
    "echo": Path(os.environ["ECHO_SBOM"]).resolve(),
}
SPDX = "application/spdx+json"
SIGNATURE = "application/vnd.dev.sigstore.bundle.v0.3+json"


def tag_of(digest: str) -> str:
    """The referrers tag of an image under the tag schema."""
    return digest.replace(":", "-")


class PushSbomTest(ServicesPushTestCase):
    def skopeo_raw(self, reference: str) -> dict:
        """The manifest or index `reference` names, as skopeo (not the push) reads it."""
        result = subprocess.run(
            ["skopeo", "inspect", "--raw", "--tls-verify=false", f"docker://{reference}"],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        self.assertEqual(result.returncode, 0, result.stderr)
        return json.loads(result.stdout)

    def discover(self, name: str, digest: str) -> list[dict]:
        """The referrers of an image, as the distribution spec tells a client to find them:
        `GET /v2/NAME/referrers/DIGEST`, or where the registry lacks it (404), the index the
        referrers tag holds; none when neither is there."""
        try:
            body, _ = self.registry.get(f"/v2/{name}/referrers/{digest}")
            return json.loads(body)["manifests"]
        except urllib.error.HTTPError as error:
            error.close()
            self.assertEqual(error.code, 404)
        if tag_of(digest) not in self.registry.tags(name):
            return []
        return self.skopeo_raw(f"{self.registry.host}/{name}:{tag_of(digest)}")["manifests"]

    def assert_sbom_attached(self, name: str, service: str, digest: str) -> str:
        """The image's one SPDX referrer is the built SBOM, byte for byte, whose subject is
        the image; returns the artifact's digest."""
        referrers = [d for d in self.discover(name, digest) if d.get("artifactType") == SPDX]
        self.assertLen(referrers, 1, referrers)
        artifact = referrers[0]["digest"]
        manifest = self.skopeo_raw(f"{self.registry.host}/{name}@{artifact}")
        self.assertEqual(manifest["artifactType"], SPDX)
        self.assertEqual(manifest["subject"]["digest"], digest)
        image_manifest, _ = self.registry.get(f"/v2/{name}/manifests/{digest}")
        self.assertEqual(manifest["subject"]["size"], len(image_manifest))
        (layer,) = manifest["layers"]
        self.assertEqual(layer["mediaType"], SPDX)
        self.assertEqual(
            layer["annotations"]["org.opencontainers.image.title"], f"{service}.spdx.json"
        )
        blob, _ = self.registry.get(f"/v2/{name}/blobs/{layer['digest']}")
        self.assertEqual(blob, SBOMS[service].read_bytes())
        self.assertEqual(layer["digest"], sha256_digest(blob))
        return artifact

    def test_push_all_attaches_each_sbom(self) -> None:
        prefix = f"{self.registry.host}/attach"
        result = self.push(PUSH_ALL, prefix, self.workdir())
        self.assertEqual(result.returncode, 0, result.stderr)
        summary = result.summary()
        for service, layout in [("kittest", self.kittest), ("echo", self.echo)]:
            name = f"attach/{service}"
            artifact = self.assert_sbom_attached(name, service, self.digest(layout))
            self.assertEqual(
                summary[service],
                f"pushed {prefix}/{service}@{self.digest(layout)} tags latest sbom {artifact}",
            )
            self.assert_pushed(name, layout)
            self.assertIn(
                f"{service}: sbom {artifact} attached, listed in the referrers index "
                f":{tag_of(self.digest(layout))}",
                result.stderr,
            )

    def test_second_push_lists_it_once_and_keeps_other_referrers(self) -> None:
        prefix = f"{self.registry.host}/again"
        self.assertEqual(self.push(PUSH_ALL, prefix, self.workdir()).returncode, 0)
        # Another tool attaches a referrer of its own (a signature, say) to kittest's image and
        # lists it in the index.
        digest = self.digest(self.kittest)
        signature = self.put_artifact("again/kittest", SIGNATURE, b"signature bytes", digest)
        index = self.skopeo_raw(f"{self.registry.host}/again/kittest:{tag_of(digest)}")
        index["manifests"].append(signature)
        self.put_manifest("again/kittest", tag_of(digest), json.dumps(index).encode(), INDEX)

        result = self.push(PUSH_ALL, prefix, self.workdir())
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertIn("already listed in the referrers index", result.stderr)
        self.assert_sbom_attached("again/kittest", "kittest", digest)
        referrers = self.discover("again/kittest", digest)
        self.assertLen(referrers, 2)
        self.assertIn(signature, referrers)

    def put_manifest(self, name: str, reference: str, data: bytes, media_type: str) -> None:
        request = urllib.request.Request(
            f"http://{self.registry.host}/v2/{name}/manifests/{reference}",
            data=data,
            method="PUT",
            headers={"Content-Type": media_type},
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            self.assertEqual(response.status, 201)

    def put_artifact(self, name: str, artifact_type: str, data: bytes, subject: str) -> dict:
        """Pushes an artifact of one blob referring to image `subject` in repository `name`
        (whose empty config blob a push has already put there); returns its descriptor."""
        digest = sha256_digest(data)
        start = urllib.request.Request(
            f"http://{self.registry.host}/v2/{name}/blobs/uploads/", data=b"", method="POST"
        )
        with urllib.request.urlopen(start, timeout=30) as response:
            location = urllib.parse.urljoin(response.url, response.headers["Location"])
        separator = "&" if "?" in location else "?"
        upload = urllib.request.Request(
            f"{location}{separator}digest={digest}",
            data=data,
            method="PUT",
            headers={"Content-Type": "application/octet-stream"},
        )
        urllib.request.urlopen(upload, timeout=30).close()
        image_manifest, _ = self.registry.get(f"/v2/{name}/manifests/{subject}")
        manifest = json.dumps(
            {
                "schemaVersion": 2,
                "mediaType": MANIFEST,
                "artifactType": artifact_type,
                "config": {"mediaType": EMPTY, "digest": EMPTY_DIGEST, "size": 2},
                "layers": [{"mediaType": artifact_type, "digest": digest, "size": len(data)}],
                "subject": {"mediaType": MANIFEST, "digest": subject, "size": len(image_manifest)},
            }
        ).encode()
        artifact = sha256_digest(manifest)
        self.put_manifest(name, artifact, manifest, MANIFEST)
        return {
            "mediaType": MANIFEST,
            "digest": artifact,
            "size": len(manifest),
            "artifactType": artifact_type,
        }

    def test_connection_dropped_after_the_index_landed(self) -> None:
        # The registry stores the referrers index, then the connection drops before its answer
        # (a reset): the push retries the same PUT, and the SBOM is listed once.
        tag = tag_of(self.digest(self.kittest))
        index_put = f"/v2/dropped/kittest/manifests/{tag}"
        puts: list[int] = []

        def drop_first_index_answer(number: int, method: str, path: str) -> str | None:
            if method == "PUT" and path == index_put:
                puts.append(number)
                return "reset after" if len(puts) == 1 else None
            return None

        proxy = FlakyProxy(self.registry.host, drop_first_index_answer)
        self.addCleanup(proxy.close)
        result = self.push(PUSH_ALL, f"{proxy.host}/dropped", self.workdir())
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertLen(puts, 2)
        self.assertIn("retrying", result.stderr)
        self.assert_sbom_attached("dropped/kittest", "kittest", self.digest(self.kittest))

    def test_oci_subject_naming_another_image_gets_the_tag(self) -> None:
        # An OCI-Subject that is not our image's digest is no promise about our image: the
        # referrers index is kept as for a registry without the API.
        proxy = FlakyProxy(self.registry.host, lambda number, method, path: "other oci subject")
        self.addCleanup(proxy.close)
        result = self.push(PUSH_ALL, f"{proxy.host}/other", self.workdir())
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assert_sbom_attached("other/kittest", "kittest", self.digest(self.kittest))

    def test_registry_with_referrers_api_gets_no_tag(self) -> None:
        # A registry that answers OCI-Subject indexes the artifact itself: no tag is written.
        proxy = FlakyProxy(self.registry.host, lambda number, method, path: "oci subject")
        self.addCleanup(proxy.close)
        result = self.push(PUSH_ALL, f"{proxy.host}/api", self.workdir())
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertIn("attached (the registry indexes referrers)", result.stderr)
        for service in ("kittest", "echo"):
            self.assertEqual(self.registry.tags(f"api/{service}"), ["latest"])
            self.assertIn(" sbom sha256:", result.summary()[service])

    def test_refused_sbom_leaves_the_image_untagged(self) -> None:
        # The registry refuses kittest's SBOM artifact: kittest fails untagged, with no manifest
        # file written (a deploy would take an image whose SBOM is missing); echo is pushed.
        artifacts: list[str] = []

        def refuse_kittest_artifact(number: int, method: str, path: str) -> str | None:
            if method == "PUT" and path.startswith("/v2/refused/kittest/manifests/"):
                artifacts.append(path)
                if len(artifacts) == 2:  # the first is the image by digest, then the SBOM
                    return "403"
            return None

        proxy = FlakyProxy(self.registry.host, refuse_kittest_artifact)
        self.addCleanup(proxy.close)
        workdir = self.workdir()
        result = self.push(PUSH_ALL, f"{proxy.host}/refused", workdir)
        self.assertEqual(result.returncode, 1, result.stderr)
        summary = result.summary()
        refused = artifacts[1].rpartition("/")[2]
        self.assertNotEqual(refused, self.digest(self.kittest))
        self.assertTrue(
            summary["kittest"].startswith(
                f"FAILED: registry {proxy.host} denied PUT /v2/refused/kittest/manifests/{refused} "
            ),
            summary,
        )
        self.assertIn(f"sbom {refused}", result.stderr)  # the SBOM's, not the image's
        self.registry.get(f"/v2/refused/kittest/manifests/{self.digest(self.kittest)}")  # went up
        self.assertTrue(summary["echo"].startswith("pushed "), summary)
        self.assertEqual(self.registry.tags("refused/kittest"), [])
        self.assertEqual([p.name for p in workdir.iterdir()], ["echo.yaml"])

    def test_refused_referrers_index_leaves_the_image_untagged(self) -> None:
        # The SBOM is pushed but its listing is refused: without it no client finds the SBOM,
        # so kittest fails untagged, saying what happened.
        tag = tag_of(self.digest(self.kittest))
        refused_path = f"/v2/unlisted/kittest/manifests/{tag}"

        def refuse_index(number: int, method: str, path: str) -> str | None:
            return "403" if method == "PUT" and path == refused_path else None

        proxy = FlakyProxy(self.registry.host, refuse_index)
        self.addCleanup(proxy.close)
        workdir = self.workdir()
        result = self.push(PUSH_ALL, f"{proxy.host}/unlisted", workdir)
        self.assertEqual(result.returncode, 1, result.stderr)
        self.assertLen(proxy.injected, 1, proxy.injected)
        self.assertTrue(
            result.summary()["kittest"].startswith(
                f"FAILED: the SBOM was pushed, but the referrers tag {tag} cannot list it: "
                f"registry {proxy.host} denied PUT {refused_path} "
            ),
            result.summary(),
        )
        self.assertEqual(self.registry.tags("unlisted/kittest"), [])
        self.assertEqual([p.name for p in workdir.iterdir()], ["echo.yaml"])

    def test_referrers_tag_holding_something_else_is_left_alone(self) -> None:
        # The referrers tag of kittest's image names an image (not an index): the push does not
        # overwrite it, and fails kittest before tagging it (`release` does not move).
        prefix = f"{self.registry.host}/occupied"
        first = self.push(PUSH_ALL, prefix, self.workdir(), "--no_sbom")
        self.assertEqual(first.returncode, 0, first.stderr)
        digest = self.digest(self.kittest)
        image_manifest, _ = self.registry.get(f"/v2/occupied/kittest/manifests/{digest}")
        self.put_manifest("occupied/kittest", tag_of(digest), image_manifest, MANIFEST)

        workdir = self.workdir()
        result = self.push(PUSH_ALL, prefix, workdir, "--tag", "release")
        self.assertEqual(result.returncode, 1, result.stderr)
        self.assertIn(
            f"FAILED: the SBOM was pushed, but the referrers tag {tag_of(digest)} cannot list "
            "it: it holds application/vnd.oci.image.manifest.v1+json, not an OCI index",
            result.summary()["kittest"],
        )
        self.assertNotIn("release", self.registry.tags("occupied/kittest"))
        self.assertIn("release", self.registry.tags("occupied/echo"))
        _, headers = self.registry.get(f"/v2/occupied/kittest/manifests/{tag_of(digest)}")
        self.assertEqual(headers["Docker-Content-Digest"], digest)
        self.assertEqual([p.name for p in workdir.iterdir()], ["echo.yaml"])

    def test_no_sbom_pushes_the_images_alone(self) -> None:
        prefix = f"{self.registry.host}/bare"
        result = self.push(PUSH_ALL, prefix, self.workdir(), "--no_sbom")
        self.assertEqual(result.returncode, 0, result.stderr)
        for service, layout in [("kittest", self.kittest), ("echo", self.echo)]:
            self.assertEqual(self.registry.tags(f"bare/{service}"), ["latest"])
            self.assertEqual(self.discover(f"bare/{service}", self.digest(layout)), [])
            self.assertTrue(result.summary()[service].endswith(" tags latest"))

    def test_sbom_of_another_image_or_none_is_bad_input(self) -> None:
        missing = self.tmp / "missing.spdx.json"
        garbage = self.tmp / "garbage.spdx.json"
        garbage.write_bytes(b"\x00not json")
        for sbom, message in [
            (
                SBOMS["echo"],
                f"push: service kittest: the SBOM echo.spdx.json describes image "
                f"{self.digest(self.echo)}, but the image is {self.digest(self.kittest)}",
            ),
            (missing, f"push: service kittest: cannot read the SBOM {missing}: "),
            (garbage, f"push: service kittest: cannot read the SBOM {garbage}: "),
        ]:
            spec = self.write_spec(
                [("kittest", self.kittest.root, self.built["kittest"])], {"kittest": sbom}
            )
            workdir = self.workdir()
            result = run_push(
                PUSH_ALL,
                "--spec",
                str(spec),
                "--repository",
                f"{self.registry.host}/bad",
                cwd=workdir,
            )
            self.assertEqual(result.returncode, 2, result.stderr)
            self.assertTrue(result.stderr.startswith(message), result.stderr)
            self.assertEqual(len(result.stderr.splitlines()), 1, result.stderr)
            self.assertEqual(list(workdir.iterdir()), [])
        self.assertEqual(self.registry.tags("bad/kittest"), [])


if __name__ == "__main__":
    absltest.main()
