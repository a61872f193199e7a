"""//deploy:base_layer as a scanner reads it: a dpkg status.d file per package of the Debian
lock (name, version, architecture as locked, installed), and /etc/os-release for Debian 13."""

from __future__ import annotations

import io
import json
import os
import tarfile
from pathlib import Path

from absl.testing import absltest
from debian.deb822 import Deb822

STATUS_DIR = "var/lib/dpkg/status.d/"


def os_release(text: str) -> dict[str, str]:
    pairs = (line.split("=", 1) for line in text.splitlines() if "=" in line)
    return {key: value.strip('"') for key, value in pairs}


class PackageDatabaseTest(absltest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.lock = json.loads(Path(os.environ["DEBS_LOCK"]).read_text())
        cls.files, cls.links = {}, {}
        with tarfile.open(fileobj=io.BytesIO(Path(os.environ["BASE_LAYER"]).read_bytes())) as tar:
            for member in tar.getmembers():
                if member.issym():
                    cls.links[member.name] = member.linkname
                elif member.isfile():
                    cls.files[member.name] = tar.extractfile(member).read()

    def test_one_status_file_per_locked_package_as_locked(self):
        status = {
            path.removeprefix(STATUS_DIR): Deb822(data.decode())
            for path, data in self.files.items()
            if path.startswith(STATUS_DIR)
        }
        found = {
            name: (fields["Package"], fields["Version"], fields["Architecture"])
            for name, fields in status.items()
        }
        # Each package's lock entry names its .deb; the architecture is the file name's.
        locked = {
            package["name"]: (
                package["name"],
                package["version"],
                package["urls"][0].rsplit("_", 1)[1].removesuffix(".deb"),
            )
            for package in self.lock["packages"]
        }
        self.assertEqual(found, locked)
        for name, fields in status.items():
            self.assertEqual(fields["Status"], "install ok installed", name)
            self.assertIn(fields["Architecture"], ("amd64", "all"), name)
            self.assertTrue(fields.get("Description"), name)

    def test_status_files_are_dpkg_paragraphs(self):
        for path, data in self.files.items():
            if path.startswith(STATUS_DIR):
                text = data.decode()
                self.assertTrue(text.startswith("Package: "), path)
                self.assertTrue(text.endswith("\n") and not text.endswith("\n\n"), path)
                self.assertEqual(text.splitlines()[1], "Status: install ok installed", path)

    def test_os_release_is_debian_13(self):
        release = os_release(self.files["etc/os-release"].decode())
        self.assertEqual(release["ID"], "debian")
        self.assertEqual(release["VERSION_ID"], "13")
        self.assertEqual(release["VERSION_CODENAME"], "trixie")
        self.assertEqual(release["PRETTY_NAME"], "Debian GNU/Linux 13 (trixie)")
        self.assertEqual(self.links["usr/lib/os-release"], "../../etc/os-release")


if __name__ == "__main__":
    absltest.main()
