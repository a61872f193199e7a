"""How the push authenticates, against real registries on loopback: htpasswd basic auth with
credentials from a docker config (`auths`, `credHelpers`), Google Application Default
Credentials (a service-account key whose token_uri is a local token endpoint) sent as
`oauth2accesstoken`, and the Bearer token flow, with credentials and anonymously. Wrong or
missing credentials fail with one line that names the registry, and move no tag; so does a
token service that answers with an HTML page instead of a token."""

from __future__ import annotations

import base64
import json
import os
import stat
import tempfile
from pathlib import Path

from absl.testing import absltest

from tests.deploy.pushing import PushResult, run_push
from tests.deploy.registry_server import RegistryServer
from tests.deploy.token_service import HTML_PAGE, TokenService
from tests.e2e.fake_google import FakeGoogle

PUSH = os.environ["PUSH"]
PUSH_ALL = os.environ["PUSH_ALL"]


class PushAuthTest(absltest.TestCase):
    @classmethod
    def setUpClass(cls) -> None:
        cls.tmp = Path(tempfile.mkdtemp(dir=os.environ.get("TEST_TMPDIR")))
        cls.google = FakeGoogle()
        cls.addClassCleanup(cls.google.close)
        cls.registry = RegistryServer(
            cls.tmp / "basic",
            users={"ci": "right-password", "oauth2accesstoken": cls.google.access_token},
        ).start()
        cls.addClassCleanup(cls.registry.stop)

    def docker_config(self, config: dict) -> str:
        directory = Path(tempfile.mkdtemp(dir=self.tmp))
        (directory / "config.json").write_text(json.dumps(config))
        return str(directory)

    def auths(self, host: str, user: str, password: str) -> str:
        auth = base64.b64encode(f"{user}:{password}".encode()).decode()
        return self.docker_config({"auths": {host: {"auth": auth}}})

    def push(self, name: str, env: dict[str, str], *args: str, host: str = "") -> PushResult:
        env = {"GOOGLE_APPLICATION_CREDENTIALS": "", **env}
        repository = f"{host or self.registry.host}/{name}"
        return run_push(
            PUSH, "--repository", repository, *args, env=env,
        )  # fmt: skip

    def assert_refused(self, result: PushResult, *phrases: str) -> None:
        self.assertEqual(result.returncode, 1, result.stderr)
        last = result.stderr.strip().splitlines()[-1]
        for phrase in phrases:
            self.assertIn(phrase, last)

    def test_right_credentials_from_docker_config_auths(self) -> None:
        config = self.auths(self.registry.host, "ci", "right-password")
        result = self.push("kit/basic", {"DOCKER_CONFIG": config})
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertIn(f"credentials: auths in {config}/config.json", result.stderr)
        self.assertEqual(self.registry.tags("kit/basic", self.registry.basic("ci")), ["latest"])

    def test_wrong_credentials_fail_naming_the_registry(self) -> None:
        config = self.auths(self.registry.host, "ci", "wrong-password")
        result = self.push("kit/wrong", {"DOCKER_CONFIG": config})
        self.assert_refused(
            result, f"registry {self.registry.host} rejected the credentials", "auths in"
        )
        self.assertEqual(self.registry.tags("kit/wrong", self.registry.basic("ci")), [])

    def test_no_credentials_fail_naming_the_registry(self) -> None:
        result = self.push("kit/none", {"DOCKER_CONFIG": self.docker_config({})})
        self.assert_refused(
            result, f"registry {self.registry.host} asks for credentials and none were found"
        )

    def test_credential_helper(self) -> None:
        helpers = Path(tempfile.mkdtemp(dir=self.tmp))
        asked = helpers / "asked"
        helper = helpers / "docker-credential-kittest"
        helper.write_text(
            "#!/bin/sh\n"
            f'[ "$1" = get ] || exit 1\ncat > {asked}\n'
            'echo \'{"Username": "ci", "Secret": "right-password"}\'\n'
        )
        helper.chmod(helper.stat().st_mode | stat.S_IXUSR)
        config = self.docker_config({"credHelpers": {self.registry.host: "kittest"}})
        env = {"DOCKER_CONFIG": config, "PATH": f"{helpers}:{os.environ['PATH']}"}
        result = self.push("kit/helper", env)
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertEqual(asked.read_text(), self.registry.host)
        self.assertIn("credentials: docker-credential-kittest", result.stderr)

    def test_google_application_default_credentials(self) -> None:
        key_file = self.google.service_account_file(
            Path(tempfile.mkdtemp(dir=self.tmp)), "pusher@kit-test.iam.gserviceaccount.com"
        )
        fetches = self.google.hits["/token"]
        env = {
            "GOOGLE_APPLICATION_CREDENTIALS": str(key_file),
            "DOCKER_CONFIG": self.docker_config({}),  # nothing to fall back on
        }
        result = run_push(
            PUSH, "--repository", f"{self.registry.host}/kit/google",
            "--google_registry", self.registry.host,
            env=env,
        )  # fmt: skip
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertIn("credentials: Google Application Default Credentials", result.stderr)
        self.assertEqual(self.google.hits["/token"], fetches + 1)
        auth = self.registry.basic("oauth2accesstoken")
        self.assertEqual(self.registry.tags("kit/google", auth), ["latest"])

    def test_bearer_token_flow(self) -> None:
        tokens = TokenService(self.tmp / "tokens", users={"ci": "right-password"})
        self.addCleanup(tokens.close)
        registry = RegistryServer(
            self.tmp / "bearer", token_auth=(tokens.realm, tokens.certificate_file)
        ).start()
        self.addCleanup(registry.stop)

        wrong = self.auths(registry.host, "ci", "wrong-password")
        result = self.push("kit/bearer", {"DOCKER_CONFIG": wrong}, host=registry.host)
        self.assert_refused(result, f"token service {tokens.realm}", registry.host)

        right = self.auths(registry.host, "ci", "right-password")
        result = self.push("kit/bearer", {"DOCKER_CONFIG": right}, host=registry.host)
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertEqual(tokens.requests[-1]["user"], "ci")
        self.assertEqual(tokens.requests[-1]["scope"], ["repository:kit/bearer:pull,push"])
        token = "Bearer " + tokens.token("kit/bearer", ("pull",))
        self.assertEqual(registry.tags("kit/bearer", token), ["latest"])

    def test_bearer_token_flow_mounts_blobs_across_repositories(self) -> None:
        # A push of both services: echo's base layers are mounted from kit/kittest, with a
        # token that grants pull on kit/kittest too (the scope the registry's challenge names).
        tokens = TokenService(self.tmp / "mount-tokens", users={"ci": "right-password"})
        self.addCleanup(tokens.close)
        registry = RegistryServer(
            self.tmp / "mount", token_auth=(tokens.realm, tokens.certificate_file)
        ).start()
        self.addCleanup(registry.stop)
        env = {
            "GOOGLE_APPLICATION_CREDENTIALS": "",
            "DOCKER_CONFIG": self.auths(registry.host, "ci", "right-password"),
        }
        workdir = Path(tempfile.mkdtemp(dir=self.tmp))
        result = run_push(PUSH_ALL, "--repository", f"{registry.host}/kit", env=env, cwd=workdir)
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertLen(result.blobs("uploaded", "kittest"), 4)
        self.assertLen(result.blobs("mounted", "echo"), 2)
        self.assertLen(result.blobs("uploaded", "echo"), 2)
        self.assertNotIn("uploading it", result.stderr)  # no mount fell back to an upload
        scopes = [tuple(request["scope"]) for request in tokens.requests]
        self.assertIn(("repository:kit/echo:pull,push", "repository:kit/kittest:pull"), scopes)
        for service in ("kittest", "echo"):
            name = f"kit/{service}"
            token = "Bearer " + tokens.token(name, ("pull",))
            # `latest`, and the referrers index its SBOM's push wrote with the same token.
            digest = result.summary()[service].partition("@")[2].split()[0]
            self.assertEqual(registry.tags(name, token), ["latest", digest.replace(":", "-")])

    def test_token_service_answering_html_fails_every_service_in_one_line(self) -> None:
        # 200 with an HTML page (a login portal in front of the token service): each service
        # fails naming the token service and what it sent, with a summary line; no traceback.
        portal = TokenService(self.tmp / "portal", users={}, html=True)
        self.addCleanup(portal.close)
        registry = RegistryServer(
            self.tmp / "portal-registry", token_auth=(portal.realm, portal.certificate_file)
        ).start()
        self.addCleanup(registry.stop)
        env = {"GOOGLE_APPLICATION_CREDENTIALS": "", "DOCKER_CONFIG": self.docker_config({})}
        workdir = Path(tempfile.mkdtemp(dir=self.tmp))
        result = run_push(PUSH_ALL, "--repository", f"{registry.host}/kit", env=env, cwd=workdir)
        self.assertEqual(result.returncode, 1, result.stderr)
        self.assertNotIn("Traceback", result.stderr)
        summary = result.summary()
        self.assertEqual(list(summary), ["kittest", "echo"], result.stdout)
        for outcome in summary.values():
            self.assertEqual(
                outcome,
                f"FAILED: token service {portal.realm} of registry {registry.host} answered "
                f"HTTP 200 text/html, not a JSON token: {HTML_PAGE.decode()!r}",
            )
        self.assertIn("push failed for 2 of 2 services", result.stderr.splitlines()[-1])
        self.assertEqual(list(workdir.iterdir()), [])

    def test_anonymous_bearer_token_flow(self) -> None:
        tokens = TokenService(self.tmp / "open-tokens", users={}, allow_anonymous=True)
        self.addCleanup(tokens.close)
        registry = RegistryServer(
            self.tmp / "open", token_auth=(tokens.realm, tokens.certificate_file)
        ).start()
        self.addCleanup(registry.stop)
        result = self.push(
            "kit/anonymous", {"DOCKER_CONFIG": self.docker_config({})}, host=registry.host
        )
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertIn("credentials: none (anonymous)", result.stderr)
        self.assertEqual(tokens.requests[-1]["user"], None)


if __name__ == "__main__":
    absltest.main()
