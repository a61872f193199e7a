"""bazel/tools/lock_debs.py against a small signed archive on a loopback HTTP server.

The test makes its own archive key with gpg, writes the indexes of trixie and trixie-updates (a
"debian" archive) and trixie-security (a "debian-security" archive), signs each Release into an
InRelease, and runs the lock tool on them with the test key as its keyring: the newest version
of each package must win with the suite it came from, a `!NAME` line must leave NAME and what
only it pulls in out, and a tampered index or a bad signature must fail the lock with one clear
line and leave the lock file as it was.
"""

from __future__ import annotations

import email.utils
import functools
import hashlib
import http.server
import importlib.util
import json
import lzma
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import unittest
from pathlib import Path

LOCK_DEBS = Path(os.environ["LOCK_DEBS"]).resolve()
DATES = {
    "trixie": "Sat, 12 Sep 2026 07:55:41 UTC",
    "trixie-updates": "Fri, 20 Nov 2026 02:11:10 UTC",
    "trixie-security": "Fri, 20 Nov 2026 00:12:42 UTC",
}
STAMPS = {
    "trixie": "20260912T075541Z",
    "trixie-updates": "20261120T021110Z",
    "trixie-security": "20261120T001242Z",
}
# suite -> package -> (version, depends). `app` pulls in everything else.
INDEXES = {
    "trixie": {
        "app": ("1.0-1", "libfoo (>= 1.0), libbar | libnone, libepoch, libtilde"),
        "libfoo": ("1.0-1", ""),
        "libbar": ("1.9-1", ""),
        "libepoch": ("1:0.5-1", ""),
        "libtilde": ("3.0-1", ""),
        "unused": ("1.0-1", ""),
        # `tool` pulls in `builder` (only it needs it) and `libfoo` (app needs it too).
        "tool": ("1.0-1", "builder, libfoo"),
        "builder": ("1.0-1", "libbuild"),
        "libbuild": ("1.0-1", ""),
    },
    "trixie-updates": {
        # 2.0~rc1 sorts after 1.9: the update wins.
        "libbar": ("2.0~rc1-1", ""),
        # 3.0~beta sorts before 3.0: trixie's version stays.
        "libtilde": ("3.0~beta-1", ""),
    },
    "trixie-security": {
        "libfoo": ("1.0-1+deb13u1", ""),
        # No epoch (0) sorts before trixie's 1:0.5-1, whatever the upstream version.
        "libepoch": ("0.9-1", ""),
    },
}
EXPECTED = {
    "app": ("1.0-1", "trixie"),
    "libbar": ("2.0~rc1-1", "trixie-updates"),
    "libepoch": ("1:0.5-1", "trixie"),
    "libfoo": ("1.0-1+deb13u1", "trixie-security"),
    "libtilde": ("3.0-1", "trixie"),
}


def archive_of(suite: str) -> str:
    return "debian-security" if suite == "trixie-security" else "debian"


def deb_path(suite: str, name: str, version: str) -> str:
    pool = "pool/updates/main" if suite == "trixie-security" else "pool/main"
    return f"{pool}/{name[0]}/{name}/{name}_{version.split(':')[-1]}_amd64.deb"


def packages_text(suite: str) -> str:
    stanzas = []
    for name, (version, depends) in INDEXES[suite].items():
        deb = f"{name} {version}".encode()
        lines = [f"Package: {name}", f"Version: {version}", "Architecture: amd64"]
        lines += [f"Depends: {depends}"] if depends else []
        lines += [
            f"Filename: {deb_path(suite, name, version)}",
            f"Size: {len(deb)}",
            f"SHA256: {hashlib.sha256(deb).hexdigest()}",
        ]
        stanzas.append("\n".join(lines) + "\n")
    return "\n".join(stanzas)


def gpg(home: Path, *args: str, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["gpg", "--homedir", str(home), "--batch", "--yes", *args],
        check=True,
        capture_output=True,
        **kwargs,
    )


class Handler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:
        pass


class LockDebsTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls) -> None:
        # A short path: gpg-agent's socket lives in the home directory.
        cls.gnupg = Path(tempfile.mkdtemp(prefix="gpg", dir="/tmp"))
        cls.gnupg.chmod(0o700)
        for uid in ("Test Archive <archive@test.invalid>", "Other Key <other@test.invalid>"):
            gpg(cls.gnupg, "--passphrase", "", "--pinentry-mode", "loopback",
                "--quick-gen-key", uid, "ed25519", "sign", "never")  # fmt: skip
        cls.keyring = cls.gnupg / "archive-keyring.gpg"
        gpg(cls.gnupg, "--output", str(cls.keyring), "--export", "archive@test.invalid")

    @classmethod
    def tearDownClass(cls) -> None:
        subprocess.run(["gpgconf", "--homedir", str(cls.gnupg), "--kill", "all"], check=False)
        shutil.rmtree(cls.gnupg, ignore_errors=True)

    def setUp(self) -> None:
        self.tmp = Path(tempfile.mkdtemp(dir=os.environ.get("TEST_TMPDIR")))
        self.root = self.tmp / "www"
        for suite in INDEXES:
            self.write_suite(suite)
        self.server = http.server.ThreadingHTTPServer(
            ("127.0.0.1", 0), functools.partial(Handler, directory=str(self.root))
        )
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.base = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.workspace = self.tmp / "workspace"
        self.workspace.mkdir()
        (self.workspace / "packages.txt").write_text("# the image\napp\n")

    def tearDown(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        shutil.rmtree(self.tmp, ignore_errors=True)

    def dists(self, suite: str) -> Path:
        return self.root / archive_of(suite) / "dists" / suite

    def write_suite(
        self,
        suite: str,
        signer: str = "archive@test.invalid",
        valid_until: str = "Sat, 01 Jan 2100 00:00:00 UTC",
        codename: str | None = None,
    ) -> None:
        dists = self.dists(suite)
        (dists / "main/binary-amd64").mkdir(parents=True, exist_ok=True)
        packages = lzma.compress(packages_text(suite).encode())
        (dists / "main/binary-amd64/Packages.xz").write_bytes(packages)
        release = (
            f"Origin: Debian\nSuite: test-{suite}\nCodename: {codename or suite}\n"
            f"Date: {DATES[suite]}\nValid-Until: {valid_until}\n"
            "Architectures: amd64\nComponents: main\nSHA256:\n"
            f" {hashlib.sha256(packages).hexdigest()} {len(packages)}"
            " main/binary-amd64/Packages.xz\n"
        )
        (dists / "Release").write_text(release)
        gpg(self.gnupg, "--local-user", signer, "--output", str(dists / "InRelease"),
            "--clearsign", str(dists / "Release"))  # fmt: skip

    def run_lock(self) -> subprocess.CompletedProcess:
        return subprocess.run(
            [
                sys.executable,
                str(LOCK_DEBS),
                "packages.txt",
                "debs.lock.json",
                f"--mirror={self.base}/debian",
                f"--snapshot={self.base}/snapshot/debian",
                f"--security-mirror={self.base}/debian-security",
                f"--security-snapshot={self.base}/snapshot/debian-security",
                f"--keyring={self.keyring}",
            ],
            env=os.environ | {"BUILD_WORKSPACE_DIRECTORY": str(self.workspace)},
            capture_output=True,
            text=True,
            timeout=60,
        )

    def lock(self) -> dict:
        result = self.run_lock()
        self.assertEqual(result.returncode, 0, result.stderr)
        return json.loads((self.workspace / "debs.lock.json").read_text())

    def assert_fails(self, *expected: str) -> None:
        before = '{"packages": []}\n'
        (self.workspace / "debs.lock.json").write_text(before)
        result = self.run_lock()
        self.assertNotEqual(result.returncode, 0)
        lines = result.stderr.strip().splitlines()
        self.assertEqual(len(lines), 1, result.stderr)
        for text in (*expected, "nothing written"):
            self.assertIn(text, lines[0])
        self.assertEqual((self.workspace / "debs.lock.json").read_text(), before)
        self.assertEqual(sorted(p.name for p in self.workspace.iterdir()),
                         ["debs.lock.json", "packages.txt"])  # fmt: skip

    def test_newest_version_wins_with_its_suite(self) -> None:
        lock = self.lock()
        got = {p["name"]: (p["version"], p["suite"]) for p in lock["packages"]}
        self.assertEqual(got, EXPECTED)
        self.assertEqual(lock["suites"], {s: {"date": d} for s, d in DATES.items()})
        for package in lock["packages"]:
            deb = f"{package['name']} {package['version']}".encode()
            self.assertEqual(package["sha256"], hashlib.sha256(deb).hexdigest())

    def test_the_lock_is_readable_as_any_file_the_user_writes(self) -> None:
        # A lock is committed and read by others: not the 0600 of a temporary file.
        old = os.umask(0o022)
        try:
            self.lock()
        finally:
            os.umask(old)
        mode = (self.workspace / "debs.lock.json").stat().st_mode & 0o777
        self.assertEqual(oct(mode), oct(0o644))

    def test_excluded_package_and_its_subtree_left_out(self) -> None:
        (self.workspace / "packages.txt").write_text("app\ntool\n")
        self.assertEqual(
            {p["name"] for p in self.lock()["packages"]},
            set(EXPECTED) | {"tool", "builder", "libbuild"},
        )
        # builder and what only it needs go; libfoo stays, app needs it.
        (self.workspace / "packages.txt").write_text("app\ntool\n!builder  # build tool\n")
        self.assertEqual({p["name"] for p in self.lock()["packages"]}, set(EXPECTED) | {"tool"})
        (self.workspace / "packages.txt").write_text("app\n!libfoo\n")
        self.assertEqual({p["name"] for p in self.lock()["packages"]}, set(EXPECTED) - {"libfoo"})

    def test_excluded_and_wanted_fails(self) -> None:
        (self.workspace / "packages.txt").write_text("app\n!app\n")
        result = self.run_lock()
        self.assertNotEqual(result.returncode, 0)
        self.assertIn("both wants and excludes app", result.stderr)
        self.assertFalse((self.workspace / "debs.lock.json").exists())

    def test_unknown_excluded_package_fails(self) -> None:
        (self.workspace / "packages.txt").write_text("app\n!libtypo\n")
        result = self.run_lock()
        self.assertNotEqual(result.returncode, 0)
        self.assertIn("excluded, but not in trixie/amd64: 'libtypo'", result.stderr)
        self.assertFalse((self.workspace / "debs.lock.json").exists())

    def test_urls_pool_first_snapshot_second(self) -> None:
        for package in self.lock()["packages"]:
            suite = package["suite"]
            path = deb_path(suite, package["name"], package["version"])
            archive = archive_of(suite)
            self.assertEqual(
                package["urls"],
                [
                    f"{self.base}/{archive}/{path}",
                    f"{self.base}/snapshot/{archive}/{STAMPS[suite]}/{path}",
                ],
            )
            self.assertEqual(
                email.utils.parsedate_to_datetime(DATES[suite]).strftime("%Y%m%dT%H%M%SZ"),
                STAMPS[suite],
            )

    def test_tampered_packages_fails(self) -> None:
        index = self.dists("trixie-security") / "main/binary-amd64/Packages.xz"
        text = packages_text("trixie-security").replace("1.0-1+deb13u1", "1.0-1+deb13u9")
        index.write_bytes(lzma.compress(text.encode()))
        self.assert_fails(
            "trixie-security/main/binary-amd64/Packages.xz", "does not match the signed"
        )

    def test_signed_by_another_key_fails(self) -> None:
        self.write_suite("trixie-updates", signer="other@test.invalid")
        self.assert_fails("dists/trixie-updates/InRelease", "signature does not verify")

    def test_modified_inrelease_fails(self) -> None:
        inrelease = self.dists("trixie").joinpath("InRelease")
        text = inrelease.read_text()
        self.assertIn(DATES["trixie"], text)
        inrelease.write_text(text.replace(DATES["trixie"], "Sun, 13 Sep 2026 07:55:41 UTC"))
        self.assert_fails("dists/trixie/InRelease", "signature does not verify")

    def test_unsigned_release_fails(self) -> None:
        inrelease = self.dists("trixie-security").joinpath("InRelease")
        shutil.copy(self.dists("trixie-security") / "Release", inrelease)
        self.assert_fails("dists/trixie-security/InRelease", "signature does not verify")

    def test_expired_release_fails(self) -> None:
        # A replayed old index: correctly signed, but past its Valid-Until.
        self.write_suite("trixie-security", valid_until="Wed, 01 Jan 2025 00:00:00 UTC")
        self.assert_fails("dists/trixie-security/InRelease", "expired")

    def test_release_of_another_suite_fails(self) -> None:
        # A correctly signed index served in another suite's place.
        self.write_suite("trixie-updates", codename="trixie")
        self.assert_fails("dists/trixie-updates/InRelease", "Codename is 'trixie'")

    def test_missing_dependency_fails_naming_it(self) -> None:
        INDEXES["trixie"]["needy"] = ("1.0-1", "libfoo:any (>= 1.0), libnone (>= 2) | libgone")
        self.addCleanup(INDEXES["trixie"].pop, "needy")
        self.write_suite("trixie")
        (self.workspace / "packages.txt").write_text("needy\n")
        result = self.run_lock()
        self.assertEqual(result.returncode, 1)
        self.assertEqual(
            result.stderr.strip().splitlines(),
            ["lock: needy needs 'libnone (>= 2) | libgone', which trixie does not have"],
        )
        self.assertFalse((self.workspace / "debs.lock.json").exists())

    def test_version_order_is_dpkg_order(self) -> None:
        spec = importlib.util.spec_from_file_location("lock_debs", LOCK_DEBS)
        lock_debs = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(lock_debs)
        pairs = [
            ("1.0-1", "1.0-1+deb13u1", -1),
            ("2.0~rc1-1", "1.9-1", 1),
            ("3.0~beta-1", "3.0-1", -1),
            ("1:0.5-1", "0.9-1", 1),
            ("1.0", "1.0-0", 0),
            ("1.0~~", "1.0~", -1),
            ("1.10", "1.9", 1),
            ("1.0a", "1.0+", -1),
            ("1:1.3.dfsg+really1.3.1-1+b1", "1:1.3.dfsg+really1.3.1-1+deb13u1", -1),
            ("3.5.7-1~deb13u2", "3.5.7-1~deb13u3", -1),
            ("20250419", "20250419+deb13u1", -1),
            ("1.001", "1.1", 0),
        ]
        dpkg = shutil.which("dpkg")
        for a, b, expected in pairs:
            with self.subTest(a=a, b=b):
                got = lock_debs.Version(a), lock_debs.Version(b)
                self.assertEqual((got[0] > got[1]) - (got[0] < got[1]), expected)
                if dpkg:  # The reference, where the root has it.
                    op = {-1: "lt", 0: "eq", 1: "gt"}[expected]
                    self.assertEqual(
                        subprocess.run([dpkg, "--compare-versions", a, op, b]).returncode, 0
                    )


if __name__ == "__main__":
    unittest.main()
