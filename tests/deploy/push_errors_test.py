"""How a registry's own text reaches the push's output (bazel/tools/push/registry_errors.py):
escaped and capped by printable(), so an error message cannot forge lines of the output
(`pushed ...@sha256:...`) or drive the terminal (`\\x1b[2K`). push_hostile_test runs the
same against a registry on loopback."""

from __future__ import annotations

import json
import unicodedata

from absl.testing import absltest

from bazel.tools.push.referrers import ReferrersError, read_index
from bazel.tools.push.registry_errors import PRINTABLE_LIMIT, error_for, printable
from bazel.tools.push.transport import Reply

FORGED = "denied\n...pushed kit/app@sha256:0000\n\x1b[2K"


def error_reply(status: int, message: str) -> Reply:
    body = json.dumps({"errors": [{"code": "DENIED", "message": message}]}).encode()
    return Reply(status, {"Content-Type": "application/json"}, body, "http://127.0.0.1:1/v2/")


def has_control(text: str) -> bool:
    return any(unicodedata.category(char)[0] == "C" for char in text)


class PrintableTest(absltest.TestCase):
    def test_control_characters_are_escaped(self) -> None:
        self.assertEqual(printable(FORGED), "denied\\n...pushed kit/app@sha256:0000\\n\\x1b[2K")
        for text, shown in (
            ("a\rb\tc\x00d\x7f", "a\\rb\\tc\\x00d\\x7f"),
            ("left\u202eright\u200b", "left\\u202eright\\u200b"),  # bidi override, ZWSP
            ("\U000e0001 \ud800", "\\U000e0001 \\ud800"),  # a tag character, a lone surrogate
            ("one\u2028two\u2029three", "one\\u2028two\\u2029three"),  # line separators
        ):
            with self.subTest(text=text):
                self.assertEqual(printable(text), shown)

    def test_printable_text_is_left_alone(self) -> None:
        for text in ("blob unknown to registry", "Zugriff verweigert: é, 日本, ü", 'a "b" \\n'):
            with self.subTest(text=text):
                self.assertEqual(printable(text), text)

    def test_long_text_is_cut_with_an_ellipsis(self) -> None:
        self.assertEqual(printable("x" * PRINTABLE_LIMIT), "x" * PRINTABLE_LIMIT)
        self.assertEqual(printable("x" * 10_000), "x" * PRINTABLE_LIMIT + "...")
        # An escape is never cut in half.
        shown = printable("x" * (PRINTABLE_LIMIT - 2) + "\x1b" * 5)
        self.assertEqual(shown, "x" * (PRINTABLE_LIMIT - 2) + "...")


class ErrorForTest(absltest.TestCase):
    def test_a_registry_error_message_stays_on_one_line(self) -> None:
        for status in (400, 401, 403, 404):
            with self.subTest(status=status):
                error = error_for("127.0.0.1:1", None, "GET /v2/", error_reply(status, FORGED))
                message = str(error)
                self.assertFalse(has_control(message), repr(message))
                self.assertLen(message.splitlines(), 1)
                self.assertIn("DENIED denied\\n...pushed kit/app@sha256:0000\\n\\x1b[2K", message)

    def test_a_long_registry_error_message_is_capped(self) -> None:
        error = error_for("127.0.0.1:1", None, "GET /v2/", error_reply(400, "y" * 60_000))
        message = str(error)
        self.assertLess(len(message), PRINTABLE_LIMIT + 100)
        self.assertEndsWith(message, "y...")


class ReferrersIndexTest(absltest.TestCase):
    """The referrers tag's document is the registry's too: what it says of itself (its
    Content-Type, its mediaType) reaches the error the push prints."""

    def test_a_lying_index_cannot_forge_lines(self) -> None:
        lying = json.dumps({"mediaType": FORGED + "A" * 3000, "schemaVersion": 2}).encode()
        for data, media_type in (
            (lying, "application/vnd.oci.image.index.v1+json"),
            (b"[]", FORGED),
            (b"not json", FORGED + "B" * 3000),
        ):
            with self.subTest(media_type=media_type[:20]):
                with self.assertRaises(ReferrersError) as caught:
                    read_index(data, media_type)
                message = str(caught.exception)
                self.assertFalse(has_control(message), repr(message))
                self.assertLess(len(message), PRINTABLE_LIMIT + 100)


if __name__ == "__main__":
    absltest.main()
