"""The local Cloud Run's metadata endpoint (tools/cloud_run/metadata.py) over a real socket:
google-auth, pointed at it by GCE_METADATA_HOST/IP as an instance would be, detects it and
gets an ID token for the audience it asks for, signed by the run's key; a request without
`Metadata-Flavor: Google` gets 403 and no token, and the server still answers afterwards."""

from __future__ import annotations

import os
import subprocess
import sys
import urllib.error
import urllib.request

from absl.testing import absltest

from tools.cloud_run.metadata import FLAVOR, FLAVOR_HEADER, IDENTITY_PATH, MetadataServer
from tools.cloud_run.tokens import TokenIssuer

AUDIENCE = "http://ping.local-cloud-run.localhost:8181"
# What python/channels/auth.py does, in a fresh interpreter: google-auth reads the metadata
# host from the environment when it is imported.
FETCH = """
import google.auth.transport.requests, google.oauth2.id_token, sys
request = google.auth.transport.requests.Request()
credentials = google.oauth2.id_token.fetch_id_token_credentials(sys.argv[1], request=request)
credentials.refresh(request)
print(credentials.token)
"""


class MetadataServerTest(absltest.TestCase):
    def setUp(self) -> None:
        super().setUp()
        self.issuer = TokenIssuer("http://127.0.0.1:9/token")
        self.server = MetadataServer(self.issuer)
        self.server.start()
        self.addCleanup(self.server.stop)

    def get(self, path: str, headers: dict[str, str]) -> tuple[int, str, str | None]:
        request = urllib.request.Request(f"http://{self.server.host}{path}", headers=headers)
        try:
            with urllib.request.urlopen(request) as response:
                return response.status, response.read().decode(), response.headers[FLAVOR_HEADER]
        except urllib.error.HTTPError as error:
            return error.code, error.read().decode(), error.headers[FLAVOR_HEADER]

    def assertServes(self) -> None:
        status, _, flavor = self.get("/", {FLAVOR_HEADER: FLAVOR})
        self.assertEqual((status, flavor), (200, FLAVOR))

    def test_google_auth_gets_a_token_signed_for_its_audience(self) -> None:
        env = {
            key: value
            for key, value in os.environ.items()
            if key != "GOOGLE_APPLICATION_CREDENTIALS"
        } | {
            "GCE_METADATA_HOST": self.server.host,
            "GCE_METADATA_IP": self.server.host,
            "PYTHONPATH": os.pathsep.join(sys.path),
        }
        fetched = subprocess.run(
            [sys.executable, "-c", FETCH, AUDIENCE],
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
        self.assertEqual(fetched.returncode, 0, fetched.stderr)
        claims = self.issuer.verify_id_token(fetched.stdout.strip(), AUDIENCE)
        self.assertEqual(claims["aud"], AUDIENCE)
        with self.assertRaisesRegex(ValueError, "refused"):
            self.issuer.verify_id_token(fetched.stdout.strip(), "http://other.localhost")
        self.assertFalse(self.issuer.accepts(fetched.stdout.strip()))

    def test_without_metadata_flavor_there_is_no_token(self) -> None:
        for headers in ({}, {FLAVOR_HEADER: "google"}, {FLAVOR_HEADER: "Google, x"}):
            with self.subTest(headers):
                status, body, _ = self.get(f"{IDENTITY_PATH}?audience={AUDIENCE}", headers)
                self.assertEqual((status, body), (403, "Missing Metadata-Flavor: Google header\n"))
        self.assertServes()

    def test_an_identity_without_audience_is_400_and_unknown_paths_404(self) -> None:
        self.assertEqual(self.get(IDENTITY_PATH, {FLAVOR_HEADER: FLAVOR})[0], 400)
        self.assertEqual(self.get("/computeMetadata/v1/x", {FLAVOR_HEADER: FLAVOR})[0], 404)
        self.assertServes()


if __name__ == "__main__":
    absltest.main()
