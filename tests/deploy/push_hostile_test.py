"""The push against a hostile or compromised registry on loopback (hostile_registry.py): it
trusts only the registry it pushes to.

- Credentials go to the registry's own origin (scheme, host, port) alone. An upload `Location`
  on another origin (another port, or `//host:port`) and a redirect to one get the request
  without them: that origin still receives the layer bytes, and may take them; one that then
  asks for credentials fails the push in one line naming it. A Bearer challenge's token service
  on another host over plain HTTP gets no credentials. `localhost.evil` and `127.example.com`
  are not loopback: HTTPS, never Basic over plain HTTP. Each with both kinds of credentials
  where they differ: a docker config's login and a Google access token. A `.netrc` (`$NETRC`)
  is never read: its `default` login reaches neither the registry nor a redirect's target.
- Every answer is read with a cap: an endless or over-long body (chunked, a 5 GB
  Content-Length, an error's, a token answer, a referrers index) fails the push in one line,
  its peak memory far below what was sent.
- A registry that drips its answer a byte at a time: each request's deadline retries it, and
  the push's --timeout ends it in one line. A deadline that is not a positive number is bad
  input (exit 2).
- A registry's error message reaches the output escaped and capped: its newlines and terminal
  escapes cannot forge lines of the push's output.
No credential ever appears in the push's output.
"""

from __future__ import annotations

import base64
import itertools
import json
import os
import socket
import tempfile
from collections.abc import Callable
from pathlib import Path

from absl.testing import absltest

from tests.deploy.hostile_registry import (
    ENDLESS_SAFETY_LIMIT,
    Origin,
    Received,
    drip,
    endless,
    forward,
    moved_to,
    reply,
)
from tests.deploy.pushing import BLOB_LINE, PushResult, run_push, run_push_measured
from tests.deploy.registry_server import RegistryServer
from tests.e2e.fake_google import FakeGoogle

PUSH = os.environ["PUSH"]
PUSH_SERVICE = os.environ["PUSH_SERVICE"]
USER, PASSWORD = "ci", "hostile-test-password"
NETRC_USER, NETRC_PASSWORD = "netrcuser", "NETRC-SECRET"
# Far above a push's own footprint, far below what the endless bodies send
# (ENDLESS_SAFETY_LIMIT): a push that reads one whole cannot stay under it.
MEMORY_BOUND = 256 * 1024 * 1024
NO_PROXY = {"no_proxy": "", "NO_PROXY": "", "http_proxy": "", "https_proxy": ""}
NO_PROXY |= {"HTTP_PROXY": "", "HTTPS_PROXY": ""}


def basic(user: str, password: str) -> str:
    return base64.b64encode(f"{user}:{password}".encode()).decode()


def uploaded_bytes(result: PushResult) -> int:
    """The bytes of the blobs the push says it uploaded."""
    return sum(
        int(m.group(4)) for m in BLOB_LINE.finditer(result.stderr) if m.group(2) == "uploaded"
    )


class PushHostileTest(absltest.TestCase):
    @classmethod
    def setUpClass(cls) -> None:
        assert 2 * MEMORY_BOUND <= ENDLESS_SAFETY_LIMIT
        cls.tmp = Path(tempfile.mkdtemp(dir=os.environ.get("TEST_TMPDIR")))
        cls.google = FakeGoogle()
        cls.addClassCleanup(cls.google.close)
        cls.registry = RegistryServer(
            cls.tmp / "registry",
            users={USER: PASSWORD, "oauth2accesstoken": cls.google.access_token},
        ).start()
        cls.addClassCleanup(cls.registry.stop)
        cls.key_file = cls.google.service_account_file(
            Path(tempfile.mkdtemp(dir=cls.tmp)), "pusher@kit-test.iam.gserviceaccount.com"
        )
        cls.names = itertools.count()

    # --- helpers -------------------------------------------------------------------------

    def origin(self, answer: Callable) -> Origin:
        origin = Origin(answer)
        self.addCleanup(origin.close)
        return origin

    def credentials(self, kind: str, host: str) -> tuple[dict[str, str], list[str]]:
        """The environment and arguments that give the push `kind` credentials for `host`."""
        directory = Path(tempfile.mkdtemp(dir=self.tmp))
        if kind == "docker config":
            auths = {host: {"auth": basic(USER, PASSWORD)}}
            (directory / "config.json").write_text(json.dumps({"auths": auths}))
            return {"DOCKER_CONFIG": str(directory), "GOOGLE_APPLICATION_CREDENTIALS": ""}, []
        (directory / "config.json").write_text("{}")
        env = {
            "DOCKER_CONFIG": str(directory),
            "GOOGLE_APPLICATION_CREDENTIALS": str(self.key_file),
        }
        return env, ["--google_registry", host]

    def secrets(self) -> list[str]:
        token = self.google.access_token
        return [PASSWORD, basic(USER, PASSWORD), token, basic("oauth2accesstoken", token)]

    def assert_no_secrets(self, result: PushResult) -> None:
        for secret in self.secrets():
            self.assertNotIn(secret, result.stdout + result.stderr)

    def assert_failed(self, result: PushResult, *phrases: str) -> str:
        """Exit 1, nothing on stdout, no traceback, the last line naming `phrases`; returns it."""
        self.assertEqual(result.returncode, 1, result.stderr)
        self.assertEqual(result.stdout, "")
        self.assertNotIn("Traceback", result.stderr)
        self.assert_no_secrets(result)
        last = result.stderr.strip().splitlines()[-1]
        self.assertStartsWith(last, "push failed: ")
        for phrase in phrases:
            self.assertIn(phrase, last)
        return last

    def name(self) -> str:
        return f"kit/hostile-{next(self.names)}"

    def storage(self, accepts: bool) -> Origin:
        """Another origin that the registry hands uploads to: passed on to the registry with
        its own authorization when it `accepts` them, else as they came."""
        authorization = self.registry.basic(USER) if accepts else None
        return self.origin(lambda h, r: forward(h, r, self.registry.host, authorization))

    # --- credentials go to the registry's origin alone ----------------------------------

    def test_upload_location_on_another_origin_gets_the_layer_without_credentials(self) -> None:
        # Each Location form, and each kind of credentials (the form does not depend on it).
        for kind, scheme_relative in (
            ("docker config", False),
            ("docker config", True),
            ("Google access token", False),
        ):
            with self.subTest(credentials=kind, scheme_relative=scheme_relative):
                storage = self.storage(accepts=True)
                rewrite = moved_to(storage.host, scheme_relative)
                front = self.origin(
                    lambda h, r, rewrite=rewrite: forward(
                        h, r, self.registry.host, location=rewrite
                    )
                )
                env, args = self.credentials(kind, front.host)
                name = self.name()
                result = run_push(
                    PUSH, "--repository", f"{front.host}/{name}", "--chunk_size_mib", "2", *args,
                    env=env,
                )  # fmt: skip
                self.assertEqual(result.returncode, 0, result.stderr)
                self.assert_no_secrets(result)
                uploads = [r for r in storage.received if r.method in ("PATCH", "PUT")]
                self.assertNotEmpty(uploads)
                self.assertEqual(sum(len(r.body) for r in uploads), uploaded_bytes(result))
                self.assertEqual(storage.authorizations(), [])
                self.assertNotEmpty(front.authorizations())  # the registry itself got them
                self.assertEqual(self.registry.tags(name, self.registry.basic(USER)), ["latest"])

    def test_another_origin_asking_for_credentials_fails_in_one_line(self) -> None:
        storage = self.storage(accepts=False)
        front = self.origin(
            lambda h, r: forward(h, r, self.registry.host, location=moved_to(storage.host))
        )
        env, _ = self.credentials("docker config", front.host)
        name = self.name()
        result = run_push(PUSH, "--repository", f"{front.host}/{name}", env=env)
        self.assert_failed(
            result, f"registry {front.host}: ", f"at {storage.url}", "HTTP 401", "another origin"
        )
        self.assertNotEmpty([r for r in storage.received if r.method in ("PATCH", "PUT")])
        self.assertEqual(storage.authorizations(), [])
        self.assertEqual(self.registry.tags(name, self.registry.basic(USER)), [])

    def redirecting_blob_checks(self, storage: Origin) -> Origin:
        """An origin in front of the registry that redirects each blob check (HEAD) to
        `storage`, another origin, and forwards everything else."""

        def redirect_blob_checks(handler: object, request: Received) -> None:
            if request.method == "HEAD" and "/blobs/" in request.target:
                reply(handler, 307, {"Location": storage.url + request.target})
            else:
                forward(handler, request, self.registry.host)

        return self.origin(redirect_blob_checks)

    def test_redirect_to_another_origin_gets_no_credentials(self) -> None:
        storage = self.storage(accepts=True)
        front = self.redirecting_blob_checks(storage)
        env, _ = self.credentials("docker config", front.host)
        name = self.name()
        result = run_push(PUSH, "--repository", f"{front.host}/{name}", env=env)
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertNotEmpty([r for r in storage.received if r.method == "HEAD"])
        self.assertEqual(storage.authorizations(), [])
        self.assertEqual(self.registry.tags(name, self.registry.basic(USER)), ["latest"])

    def test_netrc_credentials_go_nowhere(self) -> None:
        # A .netrc `default` entry matches every host: requests would send it to the registry
        # (in place of the registry's own credentials) and to the origin a 307 names.
        storage = self.storage(accepts=True)
        front = self.redirecting_blob_checks(storage)
        env, _ = self.credentials("docker config", front.host)
        netrc = Path(tempfile.mkdtemp(dir=self.tmp)) / "netrc"
        netrc.write_text(f"default login {NETRC_USER} password {NETRC_PASSWORD}\n")
        netrc.chmod(0o600)
        env |= {"NETRC": str(netrc)}
        name = self.name()
        result = run_push(PUSH, "--repository", f"{front.host}/{name}", env=env)
        netrc_basic = basic(NETRC_USER, NETRC_PASSWORD)
        for origin in (front, storage):
            for authorization in origin.authorizations():
                self.assertNotIn(netrc_basic, authorization, f"sent to {origin.url}")
        self.assertEqual(storage.authorizations(), [])
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertNotIn(NETRC_PASSWORD, result.stdout + result.stderr)
        self.assertNotEmpty([r for r in storage.received if r.method == "HEAD"])
        self.assertNotEmpty(front.authorizations())  # the registry's own credentials
        self.assertEqual(self.registry.tags(name, self.registry.basic(USER)), ["latest"])

    def test_backslash_in_a_redirect_authority_gets_no_credentials(self) -> None:
        # `http://storage\@front/...`: urlsplit reads the host after the `@` (the registry's),
        # requests ends the authority at the backslash and connects to `storage`.
        storage = self.storage(accepts=True)

        def redirect_blob_checks(handler: object, request: Received) -> None:
            if request.method == "HEAD" and "/blobs/" in request.target:
                location = f"http://{storage.host}\\@{front.host}{request.target}"
                reply(handler, 307, {"Location": location})
            else:
                forward(handler, request, self.registry.host)

        front = self.origin(redirect_blob_checks)
        env, _ = self.credentials("docker config", front.host)
        result = run_push(PUSH, "--repository", f"{front.host}/{self.name()}", env=env)
        self.assertNotEmpty([r for r in storage.received if r.method == "HEAD"])
        self.assertEqual(storage.authorizations(), [])
        self.assert_no_secrets(result)

    def test_backslash_in_a_plain_http_realm_gets_no_credentials(self) -> None:
        # `http://tokens.example:PORT\@127.0.0.1/token` looks like loopback to urlsplit; requests
        # sends it to tokens.example (here through a recording proxy).
        proxy = self.origin(lambda h, r: reply(h, 200, {"Content-Type": "application/json"}, b"{}"))
        realm = f"http://tokens.example:{proxy.host.rpartition(':')[2]}\\@127.0.0.1/token"
        challenge = f'Bearer realm="{realm}",service="kit"'
        front = self.origin(lambda h, r: reply(h, 401, {"WWW-Authenticate": challenge}))
        env, args = self.credentials("docker config", front.host)
        env |= NO_PROXY | {"http_proxy": proxy.url, "no_proxy": "127.0.0.1"}
        result = run_push(
            PUSH, "--repository", f"{front.host}/kit/x", "--retries", "1", *args, env=env
        )
        self.assertEqual(proxy.authorizations(), [])
        self.assert_failed(result, "plain HTTP")

    def test_an_upload_locations_query_never_reaches_the_output(self) -> None:
        # A storage host's signed URL, on a port where nothing listens: requests names the URL,
        # query included, in its connection error.
        with socket.socket() as unused:
            unused.bind(("127.0.0.1", 0))
            closed = unused.getsockname()[1]
        signature = "storage-signature-secret"
        signed = f"http://127.0.0.1:{closed}/upload?X-Goog-Signature={signature}"
        front = self.origin(
            lambda h, r: forward(h, r, self.registry.host, location=lambda value: signed)
        )
        env, _ = self.credentials("docker config", front.host)
        result = run_push(
            PUSH, "--repository", f"{front.host}/{self.name()}", "--retries", "2", env=env
        )
        self.assert_failed(result, "ConnectionError", f"at http://127.0.0.1:{closed}")
        self.assertNotIn(signature, result.stdout + result.stderr)

    def test_plain_http_token_service_on_another_host_gets_no_credentials(self) -> None:
        # The token service is reached through a recording proxy: on another host (a name, not
        # loopback), over plain HTTP. The registry itself is on loopback (no proxy).
        proxy = self.origin(lambda h, r: reply(h, 200, {"Content-Type": "application/json"}, b"{}"))
        realm = f"http://tokens.example:{proxy.host.rpartition(':')[2]}/token"
        challenge = f'Bearer realm="{realm}",service="kit",scope="repository:kit/x:pull,push"'
        front = self.origin(lambda h, r: reply(h, 401, {"WWW-Authenticate": challenge}))
        for kind in ("docker config", "Google access token"):
            with self.subTest(credentials=kind):
                env, args = self.credentials(kind, front.host)
                env |= NO_PROXY | {"http_proxy": proxy.url, "no_proxy": "127.0.0.1"}
                result = run_push(
                    PUSH, "--repository", f"{front.host}/kit/x", "--retries", "1", *args, env=env
                )
                self.assertEqual(proxy.received, [])
                self.assertEqual(front.authorizations(), [])
                self.assert_failed(result, f"token service {realm}", "plain HTTP")

    def test_lookalike_loopback_hosts_get_https(self) -> None:
        # An HTTP proxy for every request records where the push goes: plain HTTP arrives as
        # an absolute URL (here answered with a Basic challenge), HTTPS as a CONNECT (refused).
        def plain_http_asks_for_basic(handler: object, request: Received) -> None:
            if request.method == "CONNECT":
                reply(handler, 403)
            else:
                reply(handler, 401, {"WWW-Authenticate": 'Basic realm="lookalike"'})

        proxy = self.origin(plain_http_asks_for_basic)
        for host in ("localhost.evil:5000", "127.example.com:5000"):
            with self.subTest(host=host):
                env, _ = self.credentials("docker config", host)
                env |= NO_PROXY | {"http_proxy": proxy.url, "https_proxy": proxy.url}
                before = len(proxy.received)
                result = run_push(
                    PUSH, "--repository", f"{host}/kit/lookalike", "--retries", "1", env=env
                )
                sent = proxy.received[before:]
                self.assertEqual(proxy.authorizations(), [])
                self.assertEqual({(r.method, r.target) for r in sent}, {("CONNECT", host)})
                self.assert_failed(result, f"registry {host}: GET /v2/")

    # --- every answer read with a cap -----------------------------------------------------

    def test_a_registry_error_message_cannot_forge_output_lines(self) -> None:
        # A message with newlines, a line that looks like a push's, and a terminal escape
        # (erase the line); then one far longer than any error. Each ends the push in one line.
        forged = "denied\n...pushed kit/app@sha256:0000\n\x1b[2K"
        for message, shown in (
            (forged, "DENIED denied\\n...pushed kit/app@sha256:0000\\n\\x1b[2K"),
            ("z" * 20_000, ("DENIED " + "z" * 20_000)[:500] + "..."),  # 500 characters at most
        ):
            body = json.dumps({"errors": [{"code": "DENIED", "message": message}]}).encode()
            front = self.origin(
                lambda h, r, body=body: reply(h, 400, {"Content-Type": "application/json"}, body)
            )
            with self.subTest(message=message[:40]):
                result = run_push(PUSH, "--repository", f"{front.host}/{self.name()}")
                self.assertNotIn("\x1b", result.stdout + result.stderr)
                self.assertNotIn("sha256:0000\n", result.stderr)
                last = self.assert_failed(result, f"registry {front.host}: ", "HTTP 400")
                self.assertLess(len(last), 1000, last[:200])
                self.assertEndsWith(last, f"HTTP 400: {shown}")

    def test_endless_answers_fail_in_one_line_with_bounded_memory(self) -> None:
        def on_v2(answer: Callable) -> Callable:
            return lambda h, r: answer(h) if r.target == "/v2/" else reply(h, 404)

        def endless_token(handler: object, request: Received) -> None:
            if request.target.startswith("/token"):
                endless(handler, 200)
            else:
                realm = f"http://{request.headers['host']}/token"
                reply(handler, 401, {"WWW-Authenticate": f'Bearer realm="{realm}"'})

        cases = {
            "chunked": (on_v2(lambda h: endless(h, 200)), "over the 64 KiB limit"),
            "5 GB Content-Length": (
                on_v2(lambda h: endless(h, 200, content_length=5 * 10**9)),
                "over the 64 KiB limit",
            ),
            "error body": (
                on_v2(lambda h: endless(h, 503)),
                "HTTP 503 (its body is over the 64 KiB limit",
            ),
            "token answer": (endless_token, "over the 128 KiB limit"),
        }
        for case, (answer, phrase) in cases.items():
            with self.subTest(case=case):
                front = self.origin(answer)
                result, peak = run_push_measured(
                    PUSH, "--repository", f"{front.host}/kit/endless", "--retries", "2",
                    env={"DOCKER_CONFIG": str(self.tmp), "GOOGLE_APPLICATION_CREDENTIALS": ""},
                )  # fmt: skip
                self.assertLess(peak, MEMORY_BOUND)
                self.assert_failed(result, phrase)

    def test_endless_referrers_index_fails_in_one_line_with_bounded_memory(self) -> None:
        # The registry has no referrers API, so the push reads the referrers tag's index to
        # list the SBOM in it: that GET never ends.
        def endless_index(handler: object, request: Received) -> None:
            if request.method == "GET" and "/manifests/sha256-" in request.target:
                endless(handler, 200, "application/vnd.oci.image.index.v1+json")
            else:
                forward(handler, request, self.registry.host)

        front = self.origin(endless_index)
        env, _ = self.credentials("docker config", front.host)
        workdir = Path(tempfile.mkdtemp(dir=self.tmp))
        env["BUILD_WORKING_DIRECTORY"] = str(workdir)
        result, peak = run_push_measured(
            PUSH_SERVICE, "--repository", f"{front.host}/kit/endless-index", env=env
        )
        self.assertLess(peak, MEMORY_BOUND)
        self.assertEqual(result.returncode, 1, result.stderr)
        self.assertNotIn("Traceback", result.stderr)
        self.assert_no_secrets(result)
        summary = result.stdout.strip()
        self.assertStartsWith(
            summary, "kittest: FAILED: the SBOM was pushed, but the referrers tag"
        )
        self.assertIn("over the 4 MiB limit for a manifest", summary)
        self.assertEqual(list(workdir.iterdir()), [])

    # --- deadlines ------------------------------------------------------------------------

    def test_dripping_registry_meets_the_request_deadline_then_the_push_timeout(self) -> None:
        status = [bytes([b]) for b in b"HTTP/1.1 200 OK\r\nX-Slow: "]
        headers = (
            b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 9999\r\n\r\n"
        )
        # Each connection drips its own answer from the start.
        cases = {
            "headers": lambda: itertools.chain(status, itertools.repeat(b"a")),
            "body": lambda: itertools.chain([headers], itertools.repeat(b" ")),
        }
        for case, data in cases.items():
            with self.subTest(drips=case):
                front = self.origin(lambda h, r, data=data: drip(h, data(), every=0.2))
                result = run_push(
                    PUSH, "--repository", f"{front.host}/kit/slow",
                    "--timeout", "4", "--request_timeout", "1",
                    env={"DOCKER_CONFIG": str(self.tmp), "GOOGLE_APPLICATION_CREDENTIALS": ""},
                    timeout=60,
                )  # fmt: skip
                self.assert_failed(
                    result, f"registry {front.host}: GET /v2/: ", "ran out of time (--timeout 4 s)"
                )
                retries = [line for line in result.stderr.splitlines() if "retrying in" in line]
                self.assertNotEmpty(retries, result.stderr)
                for line in retries:
                    self.assertIn("GET /v2/: no complete answer within 1 s", line)

    def test_deadlines_that_are_not_positive_are_bad_input(self) -> None:
        for flag, value in (("--timeout", "0"), ("--request_timeout", "-1"), ("--timeout", "nan")):
            with self.subTest(flag=flag, value=value):
                result = run_push(PUSH, "--repository", "127.0.0.1:1/kit/x", flag, value)
                self.assertEqual(result.returncode, 2, result.stderr)
                self.assertEqual(
                    result.stderr.strip(),
                    "push: --timeout and --request_timeout must be positive numbers of seconds",
                )


if __name__ == "__main__":
    absltest.main()
