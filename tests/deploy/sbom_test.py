"""A service's SBOM (<service>_sbom, SPDX 2.3 JSON; the kit's test service's, so that deleting a
sample deletes nothing here) read by an independent parser and validator (spdx-tools), then
checked against the image it describes: its digest, its app layer, the dpkg status.d files and
.dist-info directories its layers actually hold, and the wheels' sha256 against the hashes of
requirements_lock.txt. Rewriting it gives the same bytes."""

from __future__ import annotations

import io
import json
import os
import re
import tarfile
import tempfile
from pathlib import Path

from absl.testing import absltest
from debian.deb822 import Deb822
from spdx_tools.spdx.model import RelationshipType
from spdx_tools.spdx.parser.error import SPDXParsingError
from spdx_tools.spdx.parser.parse_anything import parse_file
from spdx_tools.spdx.validation.document_validator import validate_full_spdx_document

from bazel.tools import sbom
from bazel.tools.oci_layout import Layout, image_outputs

STATUS_DIR = "var/lib/dpkg/status.d/"


def normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def image_contents(layout: Layout) -> tuple[set, set]:
    """(name, version, arch) of each status.d file and (name, version) of each .dist-info
    directory in the image's layers."""
    debs, dists = set(), set()
    for data in layout.layer_tars():
        with tarfile.open(fileobj=io.BytesIO(data)) as tar:
            for member in tar.getmembers():
                if member.name.startswith(STATUS_DIR) and member.isfile():
                    fields = Deb822(tar.extractfile(member).read().decode())
                    debs.add((fields["Package"], fields["Version"], fields["Architecture"]))
                directory = member.name.split("/")[-1]
                if member.isdir() and directory.endswith(".dist-info"):
                    name, version = directory.removesuffix(".dist-info").rsplit("-", 1)
                    dists.add((normalize(name), version))
    return debs, dists


def lock_hashes(text: str) -> dict[str, set[str]]:
    """requirements_lock.txt's sha256 hashes by normalized project name."""
    hashes: dict[str, set[str]] = {}
    name = None
    for line in text.splitlines():
        match = re.match(r"^([A-Za-z0-9._-]+)==", line)
        if match:
            name = normalize(match.group(1))
        for value in re.findall(r"--hash=sha256:([0-9a-f]{64})", line):
            hashes.setdefault(name, set()).add(value)
    return hashes


class SbomTest(absltest.TestCase):
    def check_service(self, service: str, image_var: str, sbom_var: str) -> None:
        directory, digest_file = image_outputs(image_var)
        layout = Layout(directory)
        digest = digest_file.read_text().strip()
        path = Path(os.environ[sbom_var])
        self.assertEqual(path.name, f"{service}.spdx.json")

        # The independent validator: no error at all.
        document = parse_file(str(path))
        self.assertEqual(validate_full_spdx_document(document, "SPDX-2.3"), [])
        self.assertEqual(document.creation_info.spdx_version, "SPDX-2.3")
        self.assertIn(digest.removeprefix("sha256:"), document.creation_info.document_namespace)
        packages = {package.spdx_id: package for package in document.packages}

        # The image it describes, by its manifest digest; everything else is in it.
        (described,) = [
            r.related_spdx_element_id
            for r in document.relationships
            if r.relationship_type == RelationshipType.DESCRIBES
        ]
        image = packages[described]
        self.assertEqual(image.version, digest)
        self.assertEqual([c.value for c in image.checksums], [digest.removeprefix("sha256:")])
        self.assertEqual(
            [ref.locator for ref in image.external_references],
            [f"pkg:oci/{service}@sha256%3A{digest.removeprefix('sha256:')}"],
        )
        contained = {
            r.related_spdx_element_id
            for r in document.relationships
            if r.relationship_type == RelationshipType.CONTAINS and r.spdx_element_id == described
        }
        self.assertEqual(contained, set(packages) - {described})

        # The application layer: the manifest's last layer.
        app_layer = layout.manifest["layers"][-1]["digest"]
        self.assertIn(app_layer, {package.version for package in packages.values()})

        def purls(prefix: str) -> dict[str, object]:
            return {
                ref.locator: package
                for package in packages.values()
                for ref in package.external_references
                if ref.locator.startswith(prefix)
            }

        # Debian packages: exactly the image's status.d files, with their source and purl.
        debs, dists = image_contents(layout)
        deb_packages = purls("pkg:deb/debian/")
        self.assertEqual(
            {
                (p.name, p.version, re.search(r"arch=([a-z0-9]+)", purl).group(1))
                for purl, p in deb_packages.items()
            },
            debs,
        )
        self.assertLen(deb_packages, len(debs))
        for purl, package in deb_packages.items():
            self.assertTrue(purl.endswith("&distro=debian-13"), purl)
            self.assertTrue(package.source_info.startswith("built from Debian source package"))

        # Python distributions: exactly the image's .dist-info directories, each with the
        # sha256 of a wheel that requirements_lock.txt allows for it.
        hashes = lock_hashes(Path(os.environ["REQUIREMENTS_LOCK"]).read_text())
        python_packages = purls("pkg:pypi/")
        self.assertEqual({(normalize(p.name), p.version) for p in python_packages.values()}, dists)
        self.assertLen(python_packages, len(dists))
        self.assertGreater(len(dists), 10)
        for purl, package in python_packages.items():
            (checksum,) = package.checksums
            self.assertIn(checksum.value, hashes[normalize(package.name)], purl)
            self.assertEqual(purl, f"pkg:pypi/{normalize(package.name)}@{package.version}")
            self.assertTrue(str(package.download_location).endswith(".whl"), purl)

        # The same image gives the same bytes.
        with tempfile.TemporaryDirectory() as temp:
            out = Path(temp) / "again.json"
            sbom.main([
                "sbom.py", "--layout", str(directory), "--digest", str(digest_file),
                "--name", service, "--app-layer-digest", str(self.write(temp, app_layer)),
                "--install-report", os.environ["INSTALL_REPORT"], "--out", str(out),
            ])  # fmt: skip
            self.assertEqual(out.read_bytes(), path.read_bytes())

    @staticmethod
    def write(directory: str, text: str) -> Path:
        path = Path(directory) / "app_layer.digest"
        path.write_text(text)
        return path

    def test_kittest(self):
        self.check_service("kittest", "IMAGE", "SBOM")

    def test_the_validator_refuses_a_broken_document(self):
        # A control: the validator's empty list above is not for want of reading the document.
        document = json.loads(Path(os.environ["SBOM"]).read_text())
        document["relationships"].append({
            "spdxElementId": "SPDXRef-image",
            "relationshipType": "CONTAINS",
            "relatedSpdxElement": "SPDXRef-nowhere",
        })  # fmt: skip
        with tempfile.TemporaryDirectory() as temp:
            broken = Path(temp) / "broken.spdx.json"
            broken.write_text(json.dumps(document))
            messages = [
                error.validation_message
                for error in validate_full_spdx_document(parse_file(str(broken)), "SPDX-2.3")
            ]
        self.assertTrue(any("SPDXRef-nowhere" in message for message in messages), messages)
        # And the parser alone refuses what is not SPDX at all (a license that is no expression).
        document = json.loads(Path(os.environ["SBOM"]).read_text())
        document["packages"][1]["licenseDeclared"] = "Not a (license"
        with tempfile.TemporaryDirectory() as temp:
            broken = Path(temp) / "broken.spdx.json"
            broken.write_text(json.dumps(document))
            with self.assertRaises(SPDXParsingError):
                parse_file(str(broken))

    def test_the_created_time_is_fixed(self):
        document = json.loads(Path(os.environ["SBOM"]).read_text())
        self.assertEqual(document["creationInfo"]["created"], "1970-01-01T00:00:00Z")


if __name__ == "__main__":
    absltest.main()
