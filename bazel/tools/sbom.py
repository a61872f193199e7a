"""An SPDX 2.3 JSON SBOM of an OCI image, from what the image holds.

    sbom.py --layout DIR --digest FILE --name NAME --app-layer-digest FILE
            [--install-report JSON]... --out OUT

The packages are read from the image's own layers (applied in order), so the SBOM lists what a
scanner of the image would find:

- every Debian package of `/var/lib/dpkg/status.d/` (deb_layer writes one file per package):
  name, version, architecture, source package (`sourceInfo`), purl
  `pkg:deb/debian/NAME@VERSION?arch=ARCH&distro=debian-13`. Their license is `NOASSERTION`:
  Debian declares licenses in each package's copyright file, which the image leaves out (with
  the rest of /usr/share/doc), and its names are not SPDX expressions;
- every Python distribution (each `*.dist-info/METADATA`): name, version, purl
  `pkg:pypi/NAME@VERSION`, its `License-Expression` where it declares one, and from pip's
  install reports the wheel's URL and sha256;
- the application layer (`--app-layer-digest`), by its blob's digest;
- the image itself, the document's described package: the manifest's digest as its checksum and
  a purl `pkg:oci/NAME@sha256%3A...`; it CONTAINS all of the above.

Deterministic: the same image gives the same bytes. `creationInfo.created` is fixed (the Unix
epoch, as the image's own timestamps are), never the clock; `documentNamespace` is derived from
the image digest, so each image's SBOM has its own.
"""

from __future__ import annotations

import argparse
import gzip
import io
import json
import re
import sys
import tarfile
from email.parser import Parser
from pathlib import Path
from urllib.parse import quote

from debian.deb822 import Packages

from bazel.tools.oci import blob_path, read_manifest

STATUS_DIR = "var/lib/dpkg/status.d/"
DISTRO = "debian-13"
CREATED = "1970-01-01T00:00:00Z"
NAMESPACE = "https://spdx.org/spdxdocs/{name}-sha256-{digest}"
TOOL = "Tool: bazel-cloud-run-kit-sbom"


def image_files(layout: Path) -> tuple[dict, list[str]]:
    """The image's regular files that describe packages (path -> content), layers applied in
    order, and its layer digests."""
    manifest = json.loads(read_manifest(layout)[1])
    files: dict[str, bytes] = {}
    for layer in manifest["layers"]:
        data = gzip.decompress(blob_path(layout, layer["digest"]).read_bytes())
        with tarfile.open(fileobj=io.BytesIO(data)) as tar:
            for member in tar:
                name = member.name.removeprefix("./")
                wanted = name.startswith(STATUS_DIR) or (
                    name.endswith("/METADATA") and name.split("/")[-2].endswith(".dist-info")
                )
                if wanted and member.isfile():
                    files[name] = tar.extractfile(member).read()
    return files, [layer["digest"] for layer in manifest["layers"]]


def normalize(name: str) -> str:
    """PEP 503's normalized project name (also purl's pypi name)."""
    return re.sub(r"[-_.]+", "-", name).lower()


def _spdx_id(kind: str, name: str, used: set[str]) -> str:
    base = f"SPDXRef-{kind}-" + re.sub(r"[^A-Za-z0-9.-]", "-", name)
    spdx_id, count = base, 1
    while spdx_id in used:
        count += 1
        spdx_id = f"{base}-{count}"
    used.add(spdx_id)
    return spdx_id


def _package(spdx_id: str, name: str, version: str, purl: str | None = None) -> dict:
    package = {
        "SPDXID": spdx_id,
        "name": name,
        "versionInfo": version,
        "downloadLocation": "NOASSERTION",
        "filesAnalyzed": False,
        "licenseConcluded": "NOASSERTION",
        "licenseDeclared": "NOASSERTION",
        "copyrightText": "NOASSERTION",
    }
    if purl:
        package["externalRefs"] = [
            {
                "referenceCategory": "PACKAGE-MANAGER",
                "referenceType": "purl",
                "referenceLocator": purl,
            }
        ]
    return package


def debian_packages(files: dict[str, bytes], used: set[str]) -> list[dict]:
    packages = []
    for path in sorted(p for p in files if p.startswith(STATUS_DIR)):
        fields = Packages(files[path].decode())
        name, version, arch = fields["Package"], fields["Version"], fields["Architecture"]
        # `Source: NAME (VERSION)`, either part implied when it is the binary package's own.
        source, source_version = fields.source, fields.source_version
        purl = f"pkg:deb/debian/{quote(name, safe='')}@{quote(version, safe='')}"
        purl += f"?arch={arch}&distro={DISTRO}"
        package = _package(_spdx_id("deb", name, used), name, version, purl)
        package["sourceInfo"] = f"built from Debian source package {source} {source_version}"
        package["supplier"] = "Organization: Debian"
        package["primaryPackagePurpose"] = "LIBRARY"
        packages.append(package)
    return packages


def _wheels(reports: list[Path]) -> dict[tuple[str, str], dict]:
    wheels = {}
    for report in reports:
        for item in json.loads(report.read_text())["install"]:
            metadata, info = item["metadata"], item["download_info"]
            key = (normalize(metadata["name"]), metadata["version"])
            wheels[key] = {
                "url": info["url"],
                "sha256": info.get("archive_info", {}).get("hashes", {}).get("sha256"),
            }
    return wheels


def python_packages(files: dict[str, bytes], reports: list[Path], used: set[str]) -> list[dict]:
    wheels = _wheels(reports)
    found = {}
    for path in files:
        if path.endswith(".dist-info/METADATA"):
            metadata = Parser().parsestr(files[path].decode("utf-8", "replace"), headersonly=True)
            found[(normalize(metadata["Name"]), metadata["Version"])] = metadata
    packages = []
    for (name, version), metadata in sorted(found.items()):
        purl = f"pkg:pypi/{name}@{quote(version, safe='')}"
        package = _package(_spdx_id("pypi", name, used), metadata["Name"], version, purl)
        if metadata["License-Expression"]:
            package["licenseDeclared"] = metadata["License-Expression"].strip()
        wheel = wheels.get((name, version))
        if wheel:
            package["downloadLocation"] = wheel["url"]
            if wheel["sha256"]:
                package["checksums"] = [{"algorithm": "SHA256", "checksumValue": wheel["sha256"]}]
        package["primaryPackagePurpose"] = "LIBRARY"
        packages.append(package)
    return packages


def sbom(
    layout: Path, image_digest: str, name: str, app_layer_digest: str, reports: list[Path]
) -> dict:
    files, layers = image_files(layout)
    if app_layer_digest not in layers:
        raise ValueError(f"the application layer {app_layer_digest} is not a layer of the image")
    digest = image_digest.removeprefix("sha256:")
    used = {"SPDXRef-DOCUMENT", "SPDXRef-image", "SPDXRef-app-layer"}
    image = _package("SPDXRef-image", name, image_digest, f"pkg:oci/{name}@sha256%3A{digest}")
    image["checksums"] = [{"algorithm": "SHA256", "checksumValue": digest}]
    image["primaryPackagePurpose"] = "CONTAINER"
    image["comment"] = "The OCI image; versionInfo and checksum are its manifest's digest."
    app = _package("SPDXRef-app-layer", f"{name} application layer", app_layer_digest)
    app["checksums"] = [
        {"algorithm": "SHA256", "checksumValue": app_layer_digest.removeprefix("sha256:")}
    ]
    app["primaryPackagePurpose"] = "ARCHIVE"
    app["comment"] = "The image's application layer (the service's own code); checksum: its blob."
    contents = [app, *debian_packages(files, used), *python_packages(files, reports, used)]
    relationships = [
        {
            "spdxElementId": "SPDXRef-DOCUMENT",
            "relationshipType": "DESCRIBES",
            "relatedSpdxElement": "SPDXRef-image",
        }
    ] + [
        {
            "spdxElementId": "SPDXRef-image",
            "relationshipType": "CONTAINS",
            "relatedSpdxElement": package["SPDXID"],
        }
        for package in contents
    ]
    return {
        "spdxVersion": "SPDX-2.3",
        "dataLicense": "CC0-1.0",
        "SPDXID": "SPDXRef-DOCUMENT",
        "name": f"{name}@{image_digest}",
        "documentNamespace": NAMESPACE.format(name=quote(name, safe=""), digest=digest),
        "creationInfo": {"created": CREATED, "creators": [TOOL]},
        "packages": [image, *contents],
        "relationships": relationships,
    }


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="sbom.py")
    parser.add_argument("--layout", type=Path, required=True)
    parser.add_argument("--digest", type=Path, required=True, help="the image digest's file")
    parser.add_argument("--name", required=True, help="the image's name, e.g. the service")
    parser.add_argument("--app-layer-digest", type=Path, required=True)
    parser.add_argument("--install-report", type=Path, action="append", default=[])
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv[1:])
    document = sbom(
        args.layout,
        args.digest.read_text().strip(),
        args.name,
        args.app_layer_digest.read_text().strip(),
        args.install_report,
    )
    args.out.write_text(json.dumps(document, indent=2, sort_keys=True) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
