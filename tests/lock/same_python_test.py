"""What runs the tests is what ships: this test runs on the image's own CPython 3.13 (unpacked
from the Debian lock by the `deb.python` extension and registered as the Python toolchain; the
binary is byte for byte the base layer's), on the image's own loader, glibc, OpenSSL and expat
(whatever the machine has), and every wheel the image installs is the wheel file the tests
installed (name, version, file and sha256, from pip's install reports of both repositories)."""

from __future__ import annotations

import hashlib
import json
import os
import pyexpat
import ssl
import subprocess
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


def mapped_files() -> dict[str, Path]:
    """File name -> path of every file this process has mapped: the interpreter, the loader and
    each shared library (the real files, symlinks resolved)."""
    mapped = {}
    for line in Path("/proc/self/maps").read_text(encoding="utf-8").splitlines():
        fields = line.split(maxsplit=5)
        if len(fields) == 6 and fields[5].startswith("/"):
            path = Path(fields[5])
            mapped[path.name] = path
    return mapped


def in_image(path: Path) -> str:
    """The path in the image of a file of @python_image's tree (under its rootfs/)."""
    parts = path.parts
    return "/".join(parts[len(parts) - parts[::-1].index("rootfs") :])


def sha256_in_layer(layer: tarfile.TarFile, name: str) -> str:
    """sha256 of a file of the base layer, through its symlinks."""
    member = layer.getmember(name)
    while member.issym():
        name = os.path.normpath(os.path.join(os.path.dirname(name), member.linkname))
        member = layer.getmember(name.lstrip("/"))
    stream = layer.extractfile(member)
    assert stream is not None, f"the base layer's {name} is not a file"
    return hashlib.sha256(stream.read()).hexdigest()


class SamePythonTest(absltest.TestCase):
    def test_the_tests_run_on_the_images_interpreter_loader_and_libraries(self) -> None:
        self.assertEqual(sys.version_info[:2], (3, 13))
        # Loaded by now: the C parts of ssl (libssl, libcrypto) and pyexpat (libexpat).
        self.assertTrue(ssl.OPENSSL_VERSION and pyexpat.EXPAT_VERSION)
        mapped = mapped_files()
        expected = [
            "python3.13",
            "ld-linux-x86-64.so.2",
            "libc.so.6",
            "libssl.so.3",
            "libcrypto.so.3",
            "libz.so.1",
            "libexpat.so.1",
        ]
        with tarfile.open(os.environ["BASE_LAYER"]) as layer:
            for name in expected:
                with self.subTest(name):
                    found = [path for file, path in mapped.items() if file.startswith(name)]
                    self.assertEqual(len(found), 1, f"{name} mapped as {found}")
                    self.assertIn("rootfs", found[0].parts, f"{found[0]} is not the image's")
                    self.assertEqual(
                        hashlib.sha256(found[0].read_bytes()).hexdigest(),
                        sha256_in_layer(layer, in_image(found[0])),
                        f"{found[0]} differs from the base layer's",
                    )

    def test_sys_executable_runs_the_same_interpreter(self) -> None:
        # Tests and binaries start sys.executable; it must run without the launcher's caller.
        child = subprocess.run(
            [sys.executable, "-c", "import ssl, sys; print(sys.prefix, ssl.OPENSSL_VERSION)"],
            capture_output=True,
            text=True,
            check=True,
            env={"PATH": "/usr/bin:/bin"},
        )
        self.assertEqual(child.stdout, f"{sys.prefix} {ssl.OPENSSL_VERSION}\n")

    def test_only_the_images_python_imports_what_pythonpath_holds(self) -> None:
        # A py_binary's stub runs on the machine's python3 before it execs the image's. A test
        # that starts a binary hands it PYTHONPATH, which holds the runfiles' packages: had the
        # stub's interpreter read it, a site hook of the machine's (a .pth that patches
        # certifi's CA bundle) would write into the output base's packages.
        hook = Path(os.environ["TEST_TMPDIR"]) / "hook"
        hook.mkdir()
        imported_by = hook / "imported_by"
        (hook / "sitecustomize.py").write_text(
            "import sys\n"
            f"with open({str(imported_by)!r}, 'a') as out:\n"
            "    print(sys.prefix, file=out)\n"
        )
        subprocess.run(
            [os.environ["SITE_PROBE"]],
            check=True,
            env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(hook)},
        )
        self.assertEqual(imported_by.read_text(), f"{sys.prefix}\n")

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
