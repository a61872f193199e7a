"""What runs the tests is what ships: this test runs on the image's own CPython 3.13 (unpacked
from the Debian lock by the `deb.python` extension and registered as the Python toolchain; the
binary is byte for byte the base layer's), and every wheel the image installs is the wheel file
the tests installed (name, version, file and sha256, from pip's install reports of both
repositories)."""

from __future__ import annotations

import hashlib
import json
import os
import sys
import tarfile
from pathlib import Path

from absl.testing import absltest


def wheels(report_var: str) -> dict[str, tuple[str, str, str]]:
    """Distribution name -> (version, wheel file name, sha256), from a pip install report."""
    report = json.loads(Path(os.environ[report_var]).read_text(encoding="utf-8"))
    installed = {}
    for item in report["install"]:
        download = item["download_info"]
        installed[item["metadata"]["name"].lower()] = (
            item["metadata"]["version"],
            download["url"].rsplit("/", 1)[-1],
            download["archive_info"]["hashes"]["sha256"],
        )
    return installed


class SamePythonTest(absltest.TestCase):
    def test_the_tests_run_on_the_images_interpreter(self) -> None:
        self.assertEqual(sys.version_info[:2], (3, 13))
        running = Path(os.path.realpath(sys.executable)).read_bytes()
        with tarfile.open(os.environ["BASE_LAYER"]) as layer:
            member = layer.extractfile("usr/bin/python3.13")
            assert member is not None, "the base layer has no usr/bin/python3.13"
            shipped = member.read()
        self.assertEqual(hashlib.sha256(running).hexdigest(), hashlib.sha256(shipped).hexdigest())

    def test_the_image_installs_the_wheel_files_the_tests_ran(self) -> None:
        image, tests = wheels("IMAGE_REPORT"), wheels("TEST_REPORT")
        self.assertGreaterEqual(len(image), 10, image)  # grpcio, protobuf, google-auth, ...
        for name, wheel in sorted(image.items()):
            with self.subTest(name):
                self.assertEqual(tests.get(name), wheel)
        # Compiled for the image's CPython, which is the one running this test.
        self.assertIn("-cp313-cp313-", image["grpcio"][1])


if __name__ == "__main__":
    absltest.main()
