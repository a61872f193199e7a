"""A push under faults, against a real registry: transient errors (503, 429, connection resets)
are retried and the pushed image is intact; a registry killed mid-push fails the push with no
tag written, and a rerun once it is back completes without uploading again what it already has;
a registry that refuses every chunk with 416 ends the push after the allowed attempts; one that
answers an upload's status with a malformed Range, or redirects in a loop, fails it with one
line, not a traceback."""

from __future__ import annotations

import os
import subprocess
import tempfile
import time
import urllib.error
import urllib.parse
from pathlib import Path

from absl.testing import absltest

from bazel.tools.oci_layout import Layout, image_outputs
from tests.deploy.flaky_proxy import FlakyProxy
from tests.deploy.pushing import BLOB_LINE, run_push
from tests.deploy.registry_server import RegistryServer

PUSH = os.environ["PUSH"]


class PushFaultsTest(absltest.TestCase):
    @classmethod
    def setUpClass(cls) -> None:
        cls.layout = Layout(image_outputs("IMAGE")[0])
        cls.digest = cls.layout.manifest_descriptor["digest"]

    def setUp(self) -> None:
        self.tmp = Path(tempfile.mkdtemp(dir=os.environ.get("TEST_TMPDIR")))
        self.registry = RegistryServer(self.tmp / "registry").start()
        self.addCleanup(self.registry.stop)

    def assert_image_intact(self, name: str) -> None:
        manifest, _ = self.registry.get(f"/v2/{name}/manifests/{self.digest}")
        self.assertEqual(manifest, self.layout.blob(self.layout.manifest_descriptor))
        for descriptor in [self.layout.manifest["config"], *self.layout.manifest["layers"]]:
            blob, _ = self.registry.get(f"/v2/{name}/blobs/{descriptor['digest']}")
            self.assertEqual(blob, self.layout.blob(descriptor), descriptor["digest"])

    def test_transient_errors_are_retried(self) -> None:
        # Every kind of fault, early enough to hit checks, chunked and monolithic uploads.
        faults = {2: "503", 4: "reset before", 7: "429", 9: "reset after", 12: "503",
                  15: "reset after", 18: "reset before"}  # fmt: skip
        proxy = FlakyProxy(self.registry.host, lambda number, method, path: faults.get(number))
        self.addCleanup(proxy.close)
        result = run_push(
            PUSH, "--repository", f"{proxy.host}/kit/flaky", "--chunk_size_mib", "2",
        )  # fmt: skip
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertEqual([number for number, _, _ in proxy.injected], sorted(faults))
        self.assertGreaterEqual(result.stderr.count("retrying in"), len(faults), result.stderr)
        self.assertIn("resuming", result.stderr)  # a chunk resumed where the registry had it
        self.assert_image_intact("kit/flaky")
        self.assertEqual(self.registry.tags("kit/flaky"), ["latest"])

    def test_lost_answers_to_completing_requests(self) -> None:
        # The registry commits each blob and the manifest, but the first answer is lost: the
        # push must find out what landed rather than fail or upload a broken blob.
        seen: set[str] = set()

        def first_commit_answer_lost(number: int, method: str, path: str) -> str | None:
            commit = method == "PUT" and ("digest=" in path or "/manifests/" in path)
            query = urllib.parse.parse_qs(urllib.parse.urlsplit(path).query)
            key = query["digest"][0] if "digest" in query else path
            if commit and key not in seen:
                seen.add(key)
                return "reset after"
            return None

        proxy = FlakyProxy(self.registry.host, first_commit_answer_lost)
        self.addCleanup(proxy.close)
        result = run_push(
            PUSH, "--repository", f"{proxy.host}/kit/lost", "--chunk_size_mib", "8",
        )  # fmt: skip
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertGreaterEqual(len(proxy.injected), 6)  # 4 blobs, the manifest, the tag
        self.assert_image_intact("kit/lost")
        self.assertEqual(self.registry.tags("kit/lost"), ["latest"])

    def test_registry_that_keeps_answering_416_ends_the_push(self) -> None:
        # Each 416 restarts the blob as a failed attempt with backoff: the push gives up after
        # --retries attempts instead of restarting forever, and moves no tag.
        fault = {"PATCH": "416"}
        proxy = FlakyProxy(self.registry.host, lambda number, method, path: fault.get(method))
        self.addCleanup(proxy.close)
        repository = f"{proxy.host}/kit/lost-track"
        args = ["--repository", repository, "--chunk_size_mib", "2", "--retries", "3"]
        started = time.monotonic()
        result = run_push(PUSH, *args, timeout=60)
        self.assertLess(time.monotonic() - started, 30)
        self.assertEqual(result.returncode, 1, result.stderr)
        self.assertEqual(result.stdout, "")
        self.assertNotIn("Traceback", result.stderr)
        self.assertLen(proxy.injected, 3, result.stderr)  # one blob, every attempt refused
        retries = [line for line in result.stderr.splitlines() if line.startswith("retrying in")]
        self.assertLen(retries, 2, result.stderr)
        self.assertTrue(all("HTTP 416" in line for line in retries), retries)
        last = result.stderr.splitlines()[-1]
        self.assertStartsWith(last, f"push failed: registry {proxy.host}: sha256:")
        self.assertIn("failed after 3 attempt(s): PATCH /v2/kit/lost-track/blobs/uploads/", last)
        self.assertIn("HTTP 416", last)
        self.assertEqual(self.registry.tags("kit/lost-track"), [])

        fault.clear()
        rerun = run_push(PUSH, *args)
        self.assertEqual(rerun.returncode, 0, rerun.stderr)
        self.assertEqual(rerun.stdout.strip(), f"{repository}@{self.digest}")
        self.assert_image_intact("kit/lost-track")
        self.assertEqual(self.registry.tags("kit/lost-track"), ["latest"])

    def test_malformed_range_fails_with_one_line(self) -> None:
        # A chunk is lost; asked where the upload stands, the registry answers a Range that is
        # not FIRST-LAST: the push fails naming the registry and what it sent, moves no tag.
        patches = []

        def lost_chunk_then_bad_range(number: int, method: str, path: str) -> str | None:
            if method == "PATCH":
                patches.append(number)
                return "reset before" if len(patches) == 1 else None
            return "bad range" if method == "GET" and "/blobs/uploads/" in path else None

        proxy = FlakyProxy(self.registry.host, lost_chunk_then_bad_range)
        self.addCleanup(proxy.close)
        result = run_push(
            PUSH, "--repository", f"{proxy.host}/kit/bad-range", "--chunk_size_mib", "2",
        )  # fmt: skip
        self.assertEqual(result.returncode, 1, result.stderr)
        self.assertEqual([fault for _, fault, _ in proxy.injected], ["reset before", "bad range"])
        self.assertNotIn("Traceback", result.stderr)
        self.assertEqual(result.stdout, "")
        last = result.stderr.splitlines()[-1]
        self.assertStartsWith(last, f"push failed: registry {proxy.host}: GET /v2/kit/bad-range/")
        self.assertIn("'bytes=garbage'", last)
        self.assertEqual(self.registry.tags("kit/bad-range"), [])

    def test_redirect_loop_fails_with_one_line(self) -> None:
        fault = {"HEAD": "redirect loop"}
        proxy = FlakyProxy(self.registry.host, lambda number, method, path: fault.get(method))
        self.addCleanup(proxy.close)
        result = run_push(PUSH, "--repository", f"{proxy.host}/kit/loop")
        self.assertEqual(result.returncode, 1, result.stderr)
        self.assertNotIn("Traceback", result.stderr)
        self.assertEqual(result.stdout, "")
        last = result.stderr.splitlines()[-1]
        self.assertStartsWith(last, f"push failed: registry {proxy.host}: HEAD /v2/kit/loop/blobs/")
        self.assertIn("TooManyRedirects", last)
        self.assertEqual(self.registry.tags("kit/loop"), [])

    def test_registry_killed_mid_push_then_rerun(self) -> None:
        repository = f"{self.registry.host}/kit/killed"
        args = ["--repository", repository, "--chunk_size_mib", "0.0625", "--retries", "3"]
        push = subprocess.Popen(
            [PUSH, *args], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        lines = []
        for line in push.stderr:
            lines.append(line)
            if line.startswith("uploaded "):  # the config is in; the big layers are next
                self.registry.kill()
                break
        with push.stdout, push.stderr:
            stderr = "".join(lines) + push.stderr.read()
            stdout = push.stdout.read()
        self.assertEqual(push.wait(timeout=60), 1, stderr)
        self.assertEqual(stdout, "")
        self.assertIn(f"push failed: registry {self.registry.host}", stderr.splitlines()[-1])

        self.registry.start()
        self.assertEqual(self.registry.tags("kit/killed"), [])
        with self.assertRaises(urllib.error.HTTPError) as missing:
            self.registry.get(f"/v2/kit/killed/manifests/{self.digest}")
        self.assertEqual(missing.exception.code, 404)
        missing.exception.close()

        uploaded_before = [m.group(3) for m in BLOB_LINE.finditer(stderr)]
        rerun = run_push(PUSH, *args)
        self.assertEqual(rerun.returncode, 0, rerun.stderr)
        self.assertEqual(rerun.stdout.strip(), f"{repository}@{self.digest}")
        self.assertCountEqual(rerun.blobs("skipped"), uploaded_before)
        self.assertLen(rerun.blobs("uploaded"), 4 - len(uploaded_before))
        self.assert_image_intact("kit/killed")
        self.assertEqual(self.registry.tags("kit/killed"), ["latest"])


if __name__ == "__main__":
    absltest.main()
