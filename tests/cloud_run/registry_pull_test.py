"""The local Cloud Run's pull (tools/cloud_run/registry_pull.py, images.py) against a hostile
registry on loopback (hostile_registry.py), over real sockets: each lie, stall, redirect or
refusal is a PullError that names what went wrong, leaves nothing in the cache directory, and
returns within the small limits the test passes (no assertion on a clock: it returned)."""

from __future__ import annotations

import json
import os
import socket
import threading
import types
from pathlib import Path
from unittest import mock

from absl.testing import absltest

from bazel.tools.layer_unpack import UnpackError, UnpackLimits
from bazel.tools.oci_layout import Layout
from tests.cloud_run import oci_fixture
from tests.cloud_run.hostile_registry import REPOSITORY, HostileRegistry
from tools.cloud_run import registry_http, registry_pull
from tools.cloud_run.images import Images
from tools.cloud_run.registry_pull import Limits, PullError

SMALL = Limits(
    read_timeout_seconds=1.0,
    total_seconds=20.0,
    max_manifest_bytes=64 * 1024,
    max_image_bytes=1 << 20,
    max_redirects=3,
)
# Far above every limit a test passes, far below the test's own timeout.
RETURNS_WITHIN_SECONDS = 15


class PullTest(absltest.TestCase):
    def setUp(self) -> None:
        super().setUp()
        self.image = oci_fixture.image(
            oci_fixture.layer(
                oci_fixture.directory("app"),
                oci_fixture.file("app/hello", b"hello"),
                oci_fixture.file("app/noise", os.urandom(100_000)),
            )
        )
        # The pull asks for the config first.
        self.config = json.loads(self.image.manifest)["config"]["digest"]
        self.cache = Path(self.create_tempdir().full_path)

    def registry(self, mode: str = "honest", redirect_to: str | None = None) -> HostileRegistry:
        registry = HostileRegistry(self.image, mode, redirect_to)
        self.addCleanup(registry.close)
        return registry

    def assertRefused(
        self, registry: HostileRegistry, *fragments: str, limits: Limits = SMALL
    ) -> str:
        """Pulls in a thread that must end well within the test's timeout: a limit that does
        not hold fails here, not as a timed-out test."""
        outcome: list[BaseException] = []

        def run() -> None:
            try:
                registry_pull.pull(registry.reference(), self.cache / "layout", limits)
            except BaseException as error:  # handed to the test's thread
                outcome.append(error)

        thread = threading.Thread(target=run, daemon=True)
        thread.start()
        thread.join(RETURNS_WITHIN_SECONDS)
        self.assertFalse(
            thread.is_alive(), f"the pull did not return in {RETURNS_WITHIN_SECONDS} s"
        )
        self.assertLen(outcome, 1, "the pull succeeded")
        self.assertIsInstance(outcome[0], PullError)
        message = str(outcome[0])
        for fragment in fragments:
            self.assertIn(fragment, message)
        self.assertEqual(os.listdir(self.cache), [], "a failed pull left files in the cache")
        return message

    def test_an_honest_registry_gives_a_layout_that_unpacks(self) -> None:
        registry = self.registry()
        digest = registry_pull.pull(registry.reference(), self.cache / "layout", SMALL)
        self.assertEqual(digest, self.image.digest)
        root = self.cache / "root"
        root.mkdir()
        Layout(self.cache / "layout").unpack(root)
        self.assertEqual((root / "app/hello").read_bytes(), b"hello")
        self.assertEqual(sorted(os.listdir(self.cache)), ["layout", "root"])
        self.assertFalse([h for _, h in registry.received if "authorization" in h])

    def test_a_manifest_of_another_digest_is_refused(self) -> None:
        message = self.assertRefused(
            self.registry("wrong_manifest"), f"manifest {self.image.digest}"
        )
        self.assertIn("the registry sent a document of digest sha256:", message)

    def test_a_blob_of_another_digest_is_refused(self) -> None:
        self.assertRefused(self.registry("wrong_blob"), f"blob {self.config}", "of digest sha256:")

    def test_a_blob_cut_short_is_refused(self) -> None:
        self.assertRefused(self.registry("short_blob"), f"blob {self.config}", "bytes, its size is")

    def test_a_blob_longer_than_its_size_is_refused(self) -> None:
        self.assertRefused(
            self.registry("oversized_blob"), f"blob {self.config}", "sent more than its size"
        )

    def test_a_registry_that_stalls_mid_blob_fails_at_the_read_timeout(self) -> None:
        limits = Limits(read_timeout_seconds=0.5, total_seconds=60)
        self.assertRefused(
            self.registry("stall_blob"), "no answer for 0.5 s (read timeout)", limits=limits
        )

    def test_a_registry_that_drips_fails_at_the_total_limit(self) -> None:
        """One byte every 50 ms never trips the read timeout; the pull's deadline ends it."""
        limits = Limits(read_timeout_seconds=1.0, total_seconds=1.5)
        self.assertRefused(
            self.registry("drip_blob"),
            "the pull took longer than its limit of 1.5 s",
            limits=limits,
        )

    def test_headers_that_drip_fail_at_the_total_limit(self) -> None:
        """A read that never returns (headers are read line by line) is cut at the deadline."""
        limits = Limits(read_timeout_seconds=1.0, total_seconds=1.5)
        self.assertRefused(
            self.registry("drip_headers"),
            "the pull took longer than its limit of 1.5 s",
            limits=limits,
        )

    def test_a_redirect_to_another_loopback_port_is_followed(self) -> None:
        storage = self.registry()
        front = self.registry("redirect_blobs", redirect_to=storage.url)
        registry_pull.pull(front.reference(), self.cache / "layout", SMALL)
        blobs = [f"/v2/{REPOSITORY}/blobs/{digest}" for digest in self.image.blobs]
        self.assertCountEqual([p for p in storage.paths() if "/blobs/" in p], blobs)

    def test_authorization_never_follows_a_redirect_to_another_origin(self) -> None:
        """The pull itself sends none; the rule holds for a caller of registry_http that does."""
        storage = self.registry()
        front = self.registry("redirect_blobs", redirect_to=storage.url)
        url = f"{front.url}/v2/{REPOSITORY}/blobs/{self.config}"
        deadline = registry_http.Deadline(SMALL.total_seconds)
        with registry_http.get(url, SMALL, deadline, authorization="Bearer secret") as body:
            self.assertEqual(body.read(1 << 20, "too long"), self.image.blobs[self.config])
        self.assertEqual([h.get("authorization") for _, h in front.received], ["Bearer secret"])
        self.assertEqual([h.get("authorization") for _, h in storage.received], [None])

    def test_a_redirect_to_plain_http_elsewhere_is_refused(self) -> None:
        registry = self.registry("redirect_blobs", redirect_to="http://registry.example.com")
        self.assertRefused(
            registry,
            f"to http://registry.example.com/v2/{REPOSITORY}/blobs/{self.config} refused",
            "only https, or plain http to loopback",
        )

    def test_a_redirect_loop_ends_at_the_limit(self) -> None:
        registry = self.registry("redirect_blobs")  # to itself
        self.assertRefused(registry, "more than 3 redirects")
        self.assertEqual(len([p for p in registry.paths() if "/blobs/" in p]), 4)

    def test_401_says_the_pull_is_anonymous(self) -> None:
        self.assertRefused(self.registry("unauthorized"), "HTTP 401", "pulls anonymously")

    def test_a_dns_lookup_that_stalls_fails_at_the_read_timeout(self) -> None:
        """A resolver stub that never answers (as a DNS server that drops the query): the
        lookup is bounded like a read, not by the resolver's own retries."""
        released = threading.Event()
        self.addCleanup(released.set)

        def stalled(*_: object, **__: object) -> list:
            released.wait()
            raise socket.gaierror("the stub never answers")

        nowhere = types.SimpleNamespace(
            reference=lambda: f"registry.invalid/{REPOSITORY}@{self.image.digest}"
        )
        with mock.patch.object(socket, "getaddrinfo", stalled):
            self.assertRefused(
                nowhere,
                "https://registry.invalid/v2/",
                "the DNS lookup of registry.invalid took more than 1 s (read timeout)",
            )

    def test_a_manifest_that_never_ends_is_cut_at_the_limit(self) -> None:
        self.assertRefused(
            self.registry("huge_manifest"),
            f"manifest {self.image.digest}: larger than the limit of 65536 bytes",
        )

    def test_an_image_larger_than_the_limit_is_refused_before_its_blobs(self) -> None:
        registry = self.registry()
        limits = Limits(max_image_bytes=50_000)
        self.assertRefused(registry, "more than the limit of 50000", limits=limits)
        self.assertEqual([p for p in registry.paths() if "/blobs/" in p], [])


class ImagesTest(absltest.TestCase):
    """images.py, the cache every revision pulls through: a pull or unpack that fails leaves
    no entry, and the next try starts over."""

    def setUp(self) -> None:
        super().setUp()
        self.cache = Path(self.create_tempdir().full_path) / "images"

    def serve(self, image: oci_fixture.Image, mode: str = "honest") -> HostileRegistry:
        registry = HostileRegistry(image, mode)
        self.addCleanup(registry.close)
        return registry

    def test_a_failed_pull_leaves_no_entry_and_a_retry_succeeds(self) -> None:
        image = oci_fixture.image(oci_fixture.layer(oci_fixture.file("hello", b"hello")))
        images = Images(self.cache, SMALL)
        with self.assertRaises(PullError):
            images.unpacked(self.serve(image, "wrong_blob").reference())
        self.assertEqual(os.listdir(self.cache), [])
        _, rootfs = images.unpacked(self.serve(image).reference())
        self.assertEqual((rootfs / "hello").read_bytes(), b"hello")

    def test_a_hostile_layer_leaves_no_entry_and_nothing_outside(self) -> None:
        outside = Path(self.create_tempdir().full_path)
        escape = os.path.relpath(outside, self.cache / "digest" / "rootfs")
        image = oci_fixture.image(
            oci_fixture.layer(
                oci_fixture.symlink("escape", escape), oci_fixture.file("escape/planted")
            )
        )
        with self.assertRaisesRegex(UnpackError, "'escape/planted': a symlink on its path"):
            Images(self.cache, SMALL).unpacked(self.serve(image).reference())
        self.assertEqual(os.listdir(self.cache), [])
        self.assertEqual(os.listdir(outside), [])

    def test_a_layer_over_the_unpack_limit_leaves_no_entry(self) -> None:
        """A decompression bomb, small enough for the pull's limits: refused by the unpack."""
        image = oci_fixture.image(
            oci_fixture.layer(oci_fixture.file("hello", b"hello")),
            oci_fixture.layer(oci_fixture.file("zeros", bytes(4 << 20))),
        )
        images = Images(self.cache, SMALL, UnpackLimits(max_layer_bytes=1 << 20))
        with self.assertRaisesRegex(UnpackError, "more than the limit of 1048576 bytes"):
            images.unpacked(self.serve(image).reference())
        self.assertEqual(os.listdir(self.cache), [])


if __name__ == "__main__":
    absltest.main()
