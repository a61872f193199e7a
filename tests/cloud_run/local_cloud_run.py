"""What the local Cloud Run's tests share: a real registry with the kit's test service's image
pushed by the kit's own push (//tests/services/kittest:kittest_push, which also writes the
resolved manifest; not a sample's, so that deleting one deletes none of these tests), the local
Cloud Run started as `bazel run //tools/cloud_run:local` starts it, and a small Admin API client
that gets its token as a release does: an assertion signed with the key file the local Cloud Run
wrote, traded at its /token."""

from __future__ import annotations

import copy
import json
import os
import subprocess
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import grpc
import yaml
from google.auth import crypt, jwt
from kittest.v1 import test_service_pb2, test_service_pb2_grpc

from bazel.tools import oci
from tests.deploy.pushing import run_push
from tests.deploy.registry_server import RegistryServer

API = "/apis/serving.knative.dev/v1"
PROJECT = "kit-local"
JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"
# A `call` with the token this test's LocalCloudRun was granted.
OWN_TOKEN = object()
START_TIMEOUT_SECONDS = 60
RECONCILE_TIMEOUT_SECONDS = 90


def scratch() -> Path:
    return Path(tempfile.mkdtemp(dir=os.environ.get("TEST_TMPDIR")))


def _json_answer(request: urllib.request.Request) -> tuple[int, dict]:
    """(HTTP status, JSON body) of a request to the local Cloud Run, error answers included."""
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        with error:
            return error.code, json.loads(error.read())


class LocalCloudRun:
    """The local Cloud Run as a process: its output in `log`, its API at `api`."""

    def __init__(self) -> None:
        directory = scratch()
        self.log_path = directory / "local.log"
        ready_file = directory / "ready.json"
        with self.log_path.open("w") as log:
            self.process = subprocess.Popen(
                [
                    os.path.abspath(os.environ["LOCAL_CLOUD_RUN"]),
                    "--api_port=0",
                    "--front_end_port=0",
                    f"--state_dir={directory / 'state'}",
                    f"--ready_file={ready_file}",
                ],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        while not ready_file.exists():
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"local Cloud Run did not start:\n{self.log()}")
            time.sleep(0.05)
        ready = json.loads(ready_file.read_text())
        self.api = ready["api"]
        self.front_end_port = ready["front_end_port"]
        self.key_file = Path(ready["key_file"])
        code, granted = self.post_token(self.assertion(json.loads(self.key_file.read_text())))
        if code != 200:
            raise RuntimeError(f"/token refused the local Cloud Run's own key: {code} {granted}")
        self.token = granted["access_token"]

    @staticmethod
    def assertion(key: dict, **claims: object) -> str:
        """A JWT-bearer assertion signed with `key` (a service-account key document), as
        google-auth makes one; `claims` override its claims."""
        now = int(time.time())
        payload = {
            "iss": key["client_email"],
            "aud": key["token_uri"],
            "scope": "https://www.googleapis.com/auth/cloud-platform",
            "iat": now,
            "exp": now + 3600,
        } | claims
        return jwt.encode(crypt.RSASigner.from_service_account_info(key), payload).decode()

    def post_token(self, assertion: str) -> tuple[int, dict]:
        """(HTTP status, JSON body) of POST /token with a JWT-bearer grant."""
        form = urllib.parse.urlencode({"grant_type": JWT_BEARER, "assertion": assertion})
        request = urllib.request.Request(self.api + "/token", data=form.encode(), method="POST")
        request.add_header("Content-Type", "application/x-www-form-urlencoded")
        return _json_answer(request)

    def log(self) -> str:
        return self.log_path.read_text()

    def stop(self) -> int:
        """SIGTERM; its exit status. Its log goes to the test's output, for a failure's sake."""
        self.process.terminate()
        status = self.process.wait(60)
        print(f"local Cloud Run exited {status}; its log:\n{self.log()}")
        return status

    def call(
        self, method: str, path: str, body: object = None, token: object = OWN_TOKEN
    ) -> tuple[int, dict]:
        """(HTTP status, JSON body) of one Admin API request."""
        request = urllib.request.Request(
            self.api + path,
            method=method,
            data=None if body is None else json.dumps(body).encode(),
            headers={"Content-Type": "application/json"},
        )
        if token is OWN_TOKEN:
            token = self.token
        if token is not None:
            request.add_header("Authorization", f"Bearer {token}")
        return _json_answer(request)

    def service_path(self, name: str = "") -> str:
        return f"{API}/namespaces/{PROJECT}/services" + (f"/{name}" if name else "")

    def wait_reconciled(self, name: str) -> dict:
        """The service once observedGeneration caught up and Ready is True or False, as a
        client polls Cloud Run."""
        deadline = time.monotonic() + RECONCILE_TIMEOUT_SECONDS
        while time.monotonic() < deadline:
            code, service = self.call("GET", self.service_path(name))
            if code != 200:
                raise AssertionError(f"GET {name}: {code} {service}")
            status = service["status"]
            ready = ready_condition(service)
            if (
                status.get("observedGeneration") == service["metadata"]["generation"]
                and ready["status"] != "Unknown"
            ):
                return service
            time.sleep(0.1)
        raise AssertionError(
            f"{name} not reconciled in {RECONCILE_TIMEOUT_SECONDS} s:\n{self.log()}"
        )

    def id_token(self, audience: str) -> str:
        """An ID token for `audience`, as the key's holder gets one (target_audience)."""
        key = json.loads(self.key_file.read_text())
        code, granted = self.post_token(self.assertion(key, target_audience=audience))
        if code != 200:
            raise RuntimeError(f"/token refused an ID token for {audience}: {code} {granted}")
        return granted["id_token"]

    def unary(self, host: str, message: str = "hello", token: bool = True) -> str:
        """TestService.Unary through the front end, on a new connection, with `host` as :authority;
        with an ID token for the URL it calls (services are private, as on Cloud Run), unless
        `token` is False."""
        options = [("grpc.default_authority", host), ("grpc.use_local_subchannel_pool", 1)]
        metadata = [("authorization", f"Bearer {self.id_token('http://' + host)}")] if token else []
        with grpc.insecure_channel(f"127.0.0.1:{self.front_end_port}", options) as channel:
            answer = test_service_pb2_grpc.TestServiceStub(channel).Unary(
                test_service_pb2.UnaryRequest(message=message), metadata=metadata, timeout=10
            )
        return answer.message


def ready_condition(service: dict) -> dict:
    return next(c for c in service["status"]["conditions"] if c["type"] == "Ready")


def host_of(url: str) -> str:
    """The :authority a client sends for a local URL (http://HOST:PORT)."""
    return url.removeprefix("http://")


def push_kittest(registry: RegistryServer) -> dict:
    """Pushes the kit's test service as a release does; returns its resolved manifest."""
    workdir = scratch()
    result = run_push(
        os.environ["PUSH_KITTEST"], "--repository", f"{registry.host}/services", cwd=workdir
    )
    if result.returncode != 0:
        raise RuntimeError(f"push failed: {result.stderr}")
    return yaml.safe_load((workdir / "kittest.yaml").read_text())


def push_as_root(registry: RegistryServer, image: str) -> str:
    """`image` (pushed to `registry`) with its config's User made root ("0:0"), pushed as a new
    manifest in the same repository, layers shared; the new image's reference."""
    name, _, digest = image.removeprefix(f"{registry.host}/").partition("@")
    base = f"http://{registry.host}/v2/{name}"

    def fetch(url: str, accept: str = "*/*") -> bytes:
        with urllib.request.urlopen(
            urllib.request.Request(url, headers={"Accept": accept}), timeout=30
        ) as response:
            return response.read()

    def put(url: str, data: bytes, content_type: str) -> None:
        request = urllib.request.Request(
            url, data=data, method="PUT", headers={"Content-Type": content_type}
        )
        urllib.request.urlopen(request, timeout=30).close()

    image_manifest = json.loads(fetch(f"{base}/manifests/{digest}", oci.MANIFEST))
    config = json.loads(fetch(f"{base}/blobs/{image_manifest['config']['digest']}"))
    config["config"]["User"] = "0:0"
    config_bytes = json.dumps(config).encode()
    config_digest = oci.sha256_digest(config_bytes)
    upload = urllib.request.Request(f"{base}/blobs/uploads/", data=b"", method="POST")
    with urllib.request.urlopen(upload, timeout=30) as response:
        location = urllib.parse.urljoin(base, response.headers["Location"])
    separator = "&" if "?" in location else "?"
    put(f"{location}{separator}digest={config_digest}", config_bytes, "application/octet-stream")
    image_manifest["config"] |= {"digest": config_digest, "size": len(config_bytes)}
    manifest_bytes = json.dumps(image_manifest).encode()
    manifest_digest = oci.sha256_digest(manifest_bytes)
    put(f"{base}/manifests/{manifest_digest}", manifest_bytes, image_manifest["mediaType"])
    return f"{registry.host}/{name}@{manifest_digest}"


def manifest(base: dict, name: str, **container: object) -> dict:
    """`base` renamed to `name`, with container fields replaced (None removes one)."""
    document = copy.deepcopy(base)
    document["metadata"]["name"] = name
    target = document["spec"]["template"]["spec"]["containers"][0]
    for key, value in container.items():
        if value is None:
            target.pop(key, None)
        else:
            target[key] = value
    return document
