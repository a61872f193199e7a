"""A server's start imports only what it serves with: google-auth (with cryptography) and
requests cost about a tenth of a second of every cold start, so they are imported by the auth
modes and the relay when those are used, never on the way to SERVING without them. Likewise the
client's reflection machinery (`client call`, `list`, `describe`) stays out of its subcommands
on generated code (`client health`).

Each case runs in a fresh interpreter (this test's own imports do not count) and reports the
modules it ended with. The controls prove the check can fail: `--auth_mode=verify` and a relay
hop that mints an ID token do import them.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

from absl.testing import absltest

DEFERRED = (
    "google.auth",
    "google.oauth2",
    "requests",
    "urllib3",
    "cryptography",
    "urllib.request",  # the certificates' fetch, in verify mode
)

# Starts the kit's test service (tests/services/kittest: all four call kinds and a relay) as far
# as its main does before serving: flags, logging, services(), and the server built with its port
# bound (then not started: no serving is needed to see what was imported). A test service, not a
# sample: deleting a sample leaves this test as it is.
START_PATH = """
from python.runtime import app, logs, server, telemetry
from tests.services.kittest import main

app.flags.FLAGS(["server", *ARGS])
logs.configure("json")
calls_telemetry = telemetry.from_environment()
server.build(app.config_from_flags(0), main.services(), calls_telemetry)
"""

# OpenTelemetry, imported only when OTEL_EXPORTER_OTLP_ENDPOINT is set.
TELEMETRY = (
    "opentelemetry",
    "opentelemetry.sdk",
    "opentelemetry.exporter.otlp.proto.grpc",
    "python.channels.client_spans",
    "python.runtime.otel_export",
)
ENDPOINT = {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:1"}
# The relay's channel, opened as its first relayed call opens it.
RELAY_CHANNEL = """
from python.channels import channels
channels.open_aio_channel(channels.Connection("127.0.0.1:1", insecure=True), None)
"""


# What only `client call`, `list` and `describe` run on. (grpc's own __init__ imports the bare
# grpc_reflection package, an empty __init__, for every program: its v1alpha modules count.)
REFLECTION_CLIENT = (
    "grpc_reflection.v1alpha.proto_reflection_descriptor_database",
    "grpc_reflection.v1alpha.reflection_pb2",
    "python.client.describe",
    "python.client.dynamic_call",
    "python.client.server_reflection",
)

# The kit's client's main against a port nothing listens on: the call fails, the imports happen.
CLIENT = """
from python.client import main
main.main(["--server=localhost:1", "--insecure", "--timeout=0.5", *ARGS])
"""


def modules_after(
    code: str,
    args: tuple[str, ...] = (),
    env: dict[str, str] | None = None,
    watched: tuple[str, ...] = DEFERRED,
) -> set[str]:
    """Which modules of `watched` are loaded after `code` runs in a fresh interpreter."""
    script = textwrap.dedent(f"""
        import json, sys
        ARGS = {list(args)!r}
        {textwrap.indent(textwrap.dedent(code), " " * 8).strip()}
        print(json.dumps(sorted(sys.modules)))
    """)
    result = subprocess.run(
        [sys.executable, "-c", script],
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path), **(env or {})},
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise AssertionError(f"the script failed:\n{result.stderr}")
    return set(watched) & set(json.loads(result.stdout.splitlines()[-1]))


class LazyImportsTest(absltest.TestCase):
    def test_start_without_auth_or_upstream_imports_neither(self) -> None:
        self.assertEqual(modules_after(START_PATH), set(), "imported at start without need")

    def test_cloud_run_auth_mode_and_an_upstream_import_neither_at_start(self) -> None:
        # cloud-run mode reads the payload Cloud Run verified: no google-auth. An upstream's
        # channel (and its ID token) is made at the first relayed call, not at start.
        args = ("--auth_mode=cloud-run", "--upstream=upstream.example.com")
        self.assertEqual(modules_after(START_PATH, args), set())

    def test_start_and_relay_channel_without_endpoint_import_no_opentelemetry(self) -> None:
        env = {"OTEL_EXPORTER_OTLP_ENDPOINT": ""}
        for name, code in (("start", START_PATH), ("relay channel", RELAY_CHANNEL)):
            with self.subTest(name):
                self.assertEqual(modules_after(code, env=env, watched=TELEMETRY), set())

    def test_an_endpoint_imports_neither_google_auth_nor_requests(self) -> None:
        # Telemetry on is the SDK and the OTLP/gRPC exporter: not the HTTP exporter's requests,
        # nor google-auth.
        self.assertEqual(modules_after(START_PATH, env=ENDPOINT), set())

    def test_control_an_endpoint_imports_opentelemetry(self) -> None:
        for name, code in (("start", START_PATH), ("relay channel", RELAY_CHANNEL)):
            with self.subTest(name):
                imported = modules_after(code, env=ENDPOINT, watched=TELEMETRY)
                self.assertIn("opentelemetry", imported)

    def test_control_verify_mode_imports_google_auth_as_the_server_is_built(self) -> None:
        args = ("--auth_mode=verify", "--audiences=https://kittest.example.com")
        self.assertLessEqual({"google.auth", "cryptography"}, modules_after(START_PATH, args))

    def test_control_minting_an_id_token_imports_google_auth_and_requests(self) -> None:
        code = """
            from python.channels import auth
            try:
                auth.id_token_credentials("https://upstream.example.com")
            except auth.AuthError:
                pass  # no credentials here: the imports happened all the same
        """
        env = {"GOOGLE_APPLICATION_CREDENTIALS": "/nonexistent/key.json"}
        self.assertLessEqual({"google.auth", "requests", "urllib3"}, modules_after(code, env=env))


class ClientLazyImportsTest(absltest.TestCase):
    def test_health_imports_no_reflection_machinery(self) -> None:
        for args in (("health",), ("health", "--watch", "--watch_seconds=0.5")):
            with self.subTest(args[0]):
                self.assertEqual(modules_after(CLIENT, args, watched=REFLECTION_CLIENT), set())

    def test_control_call_imports_it(self) -> None:
        args = ("call", "kittest.v1.TestService/Unary", "{}")
        self.assertEqual(
            modules_after(CLIENT, args, watched=REFLECTION_CLIENT), set(REFLECTION_CLIENT)
        )


if __name__ == "__main__":
    absltest.main()
