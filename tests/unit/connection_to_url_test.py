"""channels.connection_to_url: a service's URL as a relay or client is given it, and the URLs
a careless teammate types, each refused with ValueError before any channel is opened."""

from __future__ import annotations

from absl.testing import absltest, parameterized

from python.channels import auth, channels


class ConnectionToUrlTest(parameterized.TestCase):
    def test_a_cloud_run_url_is_tls_with_a_token_for_it(self) -> None:
        connection = channels.connection_to_url("https://ping-abc-ew.a.run.app")
        self.assertFalse(connection.insecure)
        self.assertEqual(connection.target, "ping-abc-ew.a.run.app:443")
        self.assertIsNone(connection.authority)
        self.assertEqual(connection.audience, "https://ping-abc-ew.a.run.app")
        self.assertTrue(connection.auth)

    def test_a_local_cloud_run_url_dials_loopback_with_its_host_as_authority(self) -> None:
        url = "http://ping-staging.my-project.localhost:8181"
        connection = channels.connection_to_url(url, auth.SERVERLESS_AUTHORIZATION)
        self.assertTrue(connection.insecure)
        self.assertEqual(connection.target, "127.0.0.1:8181")
        self.assertEqual(connection.authority, "ping-staging.my-project.localhost:8181")
        self.assertEqual(connection.audience, url)
        self.assertEqual(connection.token_header, "x-serverless-authorization")

    def test_an_ipv6_loopback_url_keeps_its_brackets(self) -> None:
        connection = channels.connection_to_url("http://[::1]:8181")
        self.assertEqual(connection.server, "[::1]:8181")
        self.assertEqual(connection.target, "[::1]:8181")
        self.assertIsNone(connection.authority)

    @parameterized.parameters(
        "ping.a.run.app",  # no scheme: host[:port] is the other form
        "ftp://ping.a.run.app",
        "https://",
        "https://ping.a.run.app/v1/path",
        "https://ping.a.run.app?x=1",
        "https://user@ping.a.run.app",
        "https://ping.a.run.app:99999",
        "https://ping.a.run.app:port",
    )
    def test_refused(self, url: str) -> None:
        with self.assertRaisesRegex(ValueError, "http"):
            channels.connection_to_url(url)


if __name__ == "__main__":
    absltest.main()
