"""Which hosts the push trusts (bazel/tools/push/origins.py): loopback is 127.0.0.0/8, ::1 and
the name `localhost` exactly, never a name that only begins like one; origins compare scheme,
host and port, the default port filled in; a token service gets credentials over HTTPS, on
loopback, or on the registry's own origin. The pushes that rest on these rules run against a
hostile registry in push_hostile_test."""

from __future__ import annotations

from absl.testing import absltest

from bazel.tools.push.origins import (
    Origin,
    is_loopback,
    origin_of,
    token_service_may_get_credentials,
)


class OriginsTest(absltest.TestCase):
    def test_loopback(self) -> None:
        for host in ("localhost", "LocalHost:5000", "127.0.0.1", "127.1.2.3:5000", "[::1]:5000",
                     "[::1]", "::1"):  # fmt: skip
            with self.subTest(host=host):
                self.assertTrue(is_loopback(host))

    def test_lookalikes_are_not_loopback(self) -> None:
        for host in ("localhost.evil.com", "localhost.evil:5000", "127.example.com",
                     "127.0.0.1.example.com:5000", "localhostx", "my-localhost", "[::2]:5000",
                     "0.0.0.0", "128.0.0.1", "gcr.io", "europe-west1-docker.pkg.dev"):  # fmt: skip
            with self.subTest(host=host):
                self.assertFalse(is_loopback(host))

    def test_origins(self) -> None:
        self.assertEqual(
            origin_of("https://Registry.Example:443/v2/"), origin_of("https://registry.example/x")
        )
        self.assertEqual(origin_of("http://[::1]:5000/v2/"), Origin("http", "::1", 5000))
        self.assertEqual(str(Origin("http", "::1", 5000)), "http://[::1]:5000")
        self.assertNotEqual(
            origin_of("http://127.0.0.1:5000/"), origin_of("http://127.0.0.1:5001/")
        )
        self.assertNotEqual(
            origin_of("http://registry.example/"), origin_of("https://registry.example/")
        )
        # Where requests connects, however urlsplit reads the URL as written.
        self.assertEqual(
            origin_of("http://evil.example\\@127.0.0.1/t"), Origin("http", "evil.example", 80)
        )
        self.assertEqual(
            origin_of("https://evil.example:8443\\@registry.example/v2/"),
            Origin("https", "evil.example", 8443),
        )
        for url in ("ftp://registry.example/", "/relative", "http:///no-host", "http://h:port/"):
            with self.subTest(url=url), self.assertRaises(ValueError):
                origin_of(url)

    def test_token_service_credentials(self) -> None:
        registry = origin_of("https://registry.example")
        for realm, allowed in {
            "https://auth.example/token": True,
            "http://127.0.0.1:8080/token": True,
            "http://localhost/token": True,
            "http://auth.example/token": False,
            "http://localhost.evil.com/token": False,
            "http://auth.example\\@127.0.0.1/token": False,
        }.items():
            with self.subTest(realm=realm):
                self.assertEqual(
                    token_service_may_get_credentials(origin_of(realm), registry), allowed
                )
        plain = origin_of("http://registry.internal:5000")
        self.assertTrue(
            token_service_may_get_credentials(origin_of("http://registry.internal:5000/t"), plain)
        )
        self.assertFalse(
            token_service_may_get_credentials(origin_of("http://registry.internal:5001/t"), plain)
        )


if __name__ == "__main__":
    absltest.main()
