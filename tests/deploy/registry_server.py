"""A real registry on loopback for push tests: Debian's `docker-registry` (distribution v2),
with filesystem storage that outlives a kill, and optional htpasswd basic auth.

Missing `docker-registry` or `htpasswd` is an error, never a skip: the provisioned Bazel root
(./bazelw) has both.
"""

from __future__ import annotations

import base64
import json
import shutil
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path


def _tool(name: str, package: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise RuntimeError(
            f"{name} not found: install Debian's {package} package (the root that ./bazelw "
            "provisions has it), or leave this test out with --test_tag_filters=-requires-tools"
        )
    return path


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class RegistryServer:
    """`docker-registry serve` on 127.0.0.1; `start()` again after `kill()` keeps port and data."""

    def __init__(
        self,
        directory: Path,
        users: dict[str, str] | None = None,
        token_auth: tuple[str, Path] | None = None,
    ) -> None:
        """`users` turns on htpasswd basic auth; `token_auth` (realm, issuer certificate) the
        Bearer token flow, see token_service.py."""
        self.directory = directory
        self.directory.mkdir(parents=True, exist_ok=True)
        self.port = _free_port()
        self.host = f"127.0.0.1:{self.port}"
        self.users = users or {}
        self.token_auth = token_auth
        self._process: subprocess.Popen[bytes] | None = None
        self._log = directory / "registry.log"
        self._config = directory / "config.yml"
        self._write_config()

    def _write_config(self) -> None:
        config: dict = {
            "version": 0.1,
            "log": {"level": "warn", "accesslog": {"disabled": True}},
            "storage": {"filesystem": {"rootdirectory": str(self.directory / "storage")}},
            "http": {"addr": self.host},
        }
        if self.users:
            htpasswd = _tool("htpasswd", "apache2-utils")
            lines = []
            for user, password in self.users.items():
                result = subprocess.run(
                    [htpasswd, "-nbB", user, password], capture_output=True, text=True, check=True
                )
                lines.append(result.stdout.strip())
            (self.directory / "htpasswd").write_text("\n".join(lines) + "\n")
            config["auth"] = {
                "htpasswd": {"realm": "kit-test", "path": str(self.directory / "htpasswd")}
            }
        if self.token_auth:
            realm, certificate = self.token_auth
            config["auth"] = {
                "token": {
                    "realm": realm,
                    "service": "kit-registry",
                    "issuer": "kit-token-issuer",
                    "rootcertbundle": str(certificate),
                }
            }
        # JSON is YAML: no YAML writer needed.
        self._config.write_text(json.dumps(config))

    def start(self) -> RegistryServer:
        with self._log.open("ab") as log:
            self._process = subprocess.Popen(
                [_tool("docker-registry", "docker-registry"), "serve", str(self._config)],
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise RuntimeError(f"docker-registry exited: {self._log.read_text()[-2000:]}")
            try:
                urllib.request.urlopen(f"http://{self.host}/v2/", timeout=1)
                return self
            except urllib.error.HTTPError as error:
                error.close()
                return self  # 401: up, and asking for credentials
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(f"docker-registry did not start: {self._log.read_text()[-2000:]}")

    def kill(self) -> None:
        """SIGKILL: the registry dies mid-request, as a crashed server does."""
        if self._process and self._process.poll() is None:
            self._process.send_signal(signal.SIGKILL)
            self._process.wait()

    def stop(self) -> None:
        if self._process and self._process.poll() is None:
            self._process.terminate()
            self._process.wait(timeout=10)

    def basic(self, user: str) -> str:
        """An Authorization header for one of the htpasswd users."""
        pair = f"{user}:{self.users[user]}".encode()
        return "Basic " + base64.b64encode(pair).decode()

    def get(self, path: str, authorization: str | None = None) -> tuple[bytes, dict[str, str]]:
        """GET from the registry API; raises HTTPError on 4xx/5xx."""
        request = urllib.request.Request(f"http://{self.host}{path}")
        request.add_header(
            "Accept",
            "application/vnd.oci.image.manifest.v1+json,application/vnd.oci.image.index.v1+json",
        )
        if authorization:
            request.add_header("Authorization", authorization)
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.read(), dict(response.headers)

    def tags(self, name: str, authorization: str | None = None) -> list[str]:
        """The repository's tags; none when the repository does not exist yet."""
        try:
            body, _ = self.get(f"/v2/{name}/tags/list", authorization)
        except urllib.error.HTTPError as error:
            error.close()
            if error.code == 404:
                return []
            raise
        return sorted(json.loads(body).get("tags") or [])
