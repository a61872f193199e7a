"""//tools/cloud_run:local on a shared machine: another local user gets nothing from it.

The local Cloud Run runs as root and runs, under runc, whatever image a Service names: a user
who could create a Service would be root. The attacker is `nobody` (through runuser, as
tests/remote's security test does), running the system's python3 over the real loopback port.
It tries a create with no token, with a made-up token, trades assertions signed by its own key
and unsigned ones at /token, and reads the key file the local Cloud Run wrote for its starter.
"""

from __future__ import annotations

import json
import shutil
import stat
import subprocess
import tempfile
from pathlib import Path

from absl.testing import absltest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from bazel.tools.oci_runtime import why_runc_cannot_run
from tests.cloud_run.local_cloud_run import LocalCloudRun

ATTACKER_USER = "nobody"
# util-linux puts it in sbin, which a test's PATH leaves out.
RUNUSER = "/usr/sbin/runuser"
# The system's interpreter (tools/bazelw/provision.sh installs python3): any user may run it.
SYSTEM_PYTHON = "/usr/bin/python3"
NAME = "owned"
MADE_UP_TOKEN = "local-" + "A" * 43


def attacker_key(token_uri: str, client_email: str) -> dict:
    """A service-account key of the attacker's own making, naming the right issuer and URI."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    return {"private_key": pem, "client_email": client_email, "token_uri": token_uri}


def unsigned(assertion: str) -> str:
    """The assertion with its signature cut off, as `alg: none` tokens come."""
    header, payload, _ = assertion.split(".")
    return f"{header}.{payload}."


class AnotherLocalUserTest(absltest.TestCase):
    @classmethod
    def setUpClass(cls) -> None:
        if reason := why_runc_cannot_run():
            raise AssertionError(f"cannot run the local Cloud Run: {reason}")
        cls.local = LocalCloudRun()
        cls.addClassCleanup(cls.local.stop)
        # Outside root's home (where Bazel keeps runfiles), where `nobody` can read it.
        shared = Path(tempfile.mkdtemp(prefix="cloud-run-attacker-", dir="/tmp"))
        cls.addClassCleanup(shutil.rmtree, shared, ignore_errors=True)
        shared.chmod(0o755)
        script = shared / "attacker.py"
        shutil.copy(Path(__file__).parent / "attacker.py", script)
        script.chmod(0o644)
        owner_key = json.loads(cls.local.key_file.read_text())
        token_uri = owner_key["token_uri"]
        own = attacker_key(token_uri, owner_key["client_email"])
        signed_by_attacker = LocalCloudRun.assertion(own)
        cls.manifest = {
            "apiVersion": "serving.knative.dev/v1",
            "kind": "Service",
            "metadata": {"name": NAME},
            "spec": {
                "template": {
                    "spec": {"containers": [{"image": "127.0.0.1:1/evil@sha256:" + "0" * 64}]}
                }
            },
        }
        plan = {
            "api": cls.local.api,
            "services_path": cls.local.service_path(),
            "manifest": cls.manifest,
            "made_up_token": MADE_UP_TOKEN,
            "key_file": str(cls.local.key_file),
            "assertions": {
                "signed_by_attacker": signed_by_attacker,
                "id_token_signed_by_attacker": LocalCloudRun.assertion(
                    own, target_audience="http://anything"
                ),
                "unsigned": unsigned(signed_by_attacker),
                "owner_claims_unsigned": unsigned(LocalCloudRun.assertion(owner_key)),
                "not_a_jwt": "not.a.jwt",
            },
        }
        result = subprocess.run(
            [RUNUSER, "-u", ATTACKER_USER, "--", SYSTEM_PYTHON, "-B", str(script)],
            input=json.dumps(plan),
            capture_output=True,
            text=True,
            timeout=180,
            check=False,
        )
        if result.returncode != 0:
            raise AssertionError(f"the attacker failed to run:\n{result.stderr}")
        cls.report = json.loads(result.stdout)

    def test_no_token_and_a_made_up_token_are_401(self) -> None:
        for attempt in ("no_token", "made_up_token"):
            with self.subTest(attempt):
                self.assertEqual(self.report[attempt]["code"], 401, self.report)

    def test_token_endpoint_grants_nothing_to_another_key(self) -> None:
        attempts = [name for name in self.report if name.startswith("token_")]
        self.assertLen(attempts, 5)
        for attempt in attempts:
            with self.subTest(attempt):
                self.assertIn(self.report[attempt]["code"], (400, 401), self.report[attempt])
                self.assertFalse(self.report[attempt]["granted"])
                self.assertIsNone(self.report[attempt]["create_with_it"])

    def test_another_user_cannot_read_the_key_file(self) -> None:
        self.assertEqual(self.report["read_key"], {"error": "PermissionError", "read": False})
        key_file = self.local.key_file
        self.assertEqual(stat.S_IMODE(key_file.stat().st_mode), 0o600)
        self.assertEqual(stat.S_IMODE(key_file.parent.stat().st_mode), 0o700)

    def test_no_service_was_created_and_the_server_still_answers_its_owner(self) -> None:
        code, body = self.local.call("GET", self.local.service_path(NAME))
        self.assertEqual(code, 404, body)
        code, listing = self.local.call("GET", self.local.service_path())
        self.assertEqual(code, 200, listing)
        self.assertEqual(listing.get("items", []), [])
        # The very manifest the attacker sent is one the owner may create: auth stopped it.
        code, body = self.local.call(
            "POST", self.local.service_path() + "?dryRun=all", self.manifest
        )
        self.assertEqual(code, 200, body)

    def test_refusals_are_logged_without_the_tokens(self) -> None:
        log = self.local.log()
        self.assertIn(f"api: POST {self.local.service_path()} 401", log)
        self.assertIn("api: POST /token 401", log)
        self.assertNotIn(MADE_UP_TOKEN, log)
        self.assertNotIn(self.local.token, log)


if __name__ == "__main__":
    absltest.main()
