"""`-H 'name: value'` as the client reads it: keys lowercased, values trimmed, `-bin` values
decoded from base64 in either alphabet, with or without padding. The refusals (and that they
show no value) are in //tests/e2e:call_e2e_test, as the binary prints them."""

from __future__ import annotations

import argparse

from absl.testing import absltest

from python.client import headers


class HeadersTest(absltest.TestCase):
    def test_good_headers(self) -> None:
        for text, expected in (
            ("x-trace: abc", ("x-trace", "abc")),
            (
                "X-Cloud-Trace-Context:  105445aa/1;o=1 ",
                ("x-cloud-trace-context", "105445aa/1;o=1"),
            ),
            ("authorization: Bearer a.b.c", ("authorization", "Bearer a.b.c")),
            ("with.dots_and-dashes:", ("with.dots_and-dashes", "")),
            ("url: https://example.com:8443/x", ("url", "https://example.com:8443/x")),
            ("x-bin: AAEC/w==", ("x-bin", b"\x00\x01\x02\xff")),
            ("x-bin: AAEC/w", ("x-bin", b"\x00\x01\x02\xff")),
            ("x-bin: AAEC_w", ("x-bin", b"\x00\x01\x02\xff")),
            ("x-bin:", ("x-bin", b"")),
        ):
            with self.subTest(text):
                self.assertEqual(headers.parse(text), expected)

    def test_bad_headers(self) -> None:
        for text in (
            "no colon",
            ": v",
            "a b: v",
            "ü: v",
            "grpc-timeout: 1S",
            "x-bin: A!",
            "x: a\tb",
        ):
            with self.subTest(text), self.assertRaises(argparse.ArgumentTypeError):
                headers.parse(text)


if __name__ == "__main__":
    absltest.main()
