"""The release's declared smoke checks (bazel/tools/release/checks.py) one by one: how a response
is matched, and, against a real server of the kit's test service, what passes and the one line
each failure prints.
Declarations that are wrong fail the build instead (tests/deploy: smoke_check_*_test)."""

from __future__ import annotations

import grpc
from absl.testing import absltest

from bazel.tools.release import checks
from tests.e2e.processes import KITTEST_SERVER, Server

UNARY = "kittest.v1.TestService/Unary"


def check(method: str, code: str = "OK", response: dict | None = None) -> checks.Check:
    return checks.Check(method, {"message": "hi"}, code, response)


class ContainsTest(absltest.TestCase):
    def test_a_subset_of_fields_recursively(self) -> None:
        self.assertTrue(checks.contains({}, {"a": 1}))
        self.assertTrue(checks.contains({"a": {"b": 2}}, {"a": {"b": 2, "c": 3}, "d": 4}))
        self.assertFalse(checks.contains({"a": {"b": 2}}, {"a": {"b": 3}}))
        self.assertFalse(checks.contains({"a": 1}, {"b": 1}))
        self.assertFalse(checks.contains({"a": [1]}, {"a": [1, 2]}))  # lists: equal only
        self.assertFalse(checks.contains({"a": 1}, "a string"))

    def test_from_spec_reads_the_fields_the_build_wrote(self) -> None:
        entry = {"method": UNARY, "request": {}, "code": "NOT_FOUND", "response": None}
        (read,) = checks.from_spec([entry])
        self.assertEqual(read, checks.Check(UNARY, {}, "NOT_FOUND", None))
        self.assertEqual(read.expected(), "NOT_FOUND")
        self.assertEqual(
            check(UNARY, response={"message": "hi"}).expected(), 'OK with {"message":"hi"}'
        )


class RunTest(absltest.TestCase):
    @classmethod
    def setUpClass(cls) -> None:
        super().setUpClass()
        cls.server = Server(binary_var=KITTEST_SERVER)
        cls.addClassCleanup(cls.server.stop)

    def run_checks(self, *declared: checks.Check) -> str:
        """The failure's line, "" when every check passed."""
        with grpc.insecure_channel(self.server.address) as channel:
            try:
                checks.run(channel, list(declared), timeout=20)
            except checks.CheckFailed as failure:
                return str(failure)
        return ""

    def test_the_echo_passes(self) -> None:
        self.assertEqual(
            self.run_checks(check(UNARY), check(UNARY, response={"message": "hi"})), ""
        )

    def test_another_response_fails_with_what_came(self) -> None:
        line = self.run_checks(check(UNARY, response={"message": "bye"}))
        self.assertStartsWith(
            line, f'check {UNARY}: expected OK with {{"message":"bye"}}, got OK {{'
        )
        self.assertIn('"message":"hi"', line)

    def test_another_status_fails(self) -> None:
        line = self.run_checks(check(UNARY, code="INVALID_ARGUMENT"))
        self.assertStartsWith(line, f"check {UNARY}: expected INVALID_ARGUMENT, got OK {{")

    def test_a_method_the_server_lacks_fails(self) -> None:
        line = self.run_checks(check(UNARY), check("kittest.v1.TestService/Nope"))
        self.assertStartsWith(
            line, "check kittest.v1.TestService/Nope: expected OK, got no method Nope"
        )
        line = self.run_checks(check("other.v1.Other/Send"))
        self.assertStartsWith(line, "check other.v1.Other/Send: expected OK, got no service")

    def test_a_request_of_the_wrong_shape_fails(self) -> None:
        line = self.run_checks(checks.Check(UNARY, {"nope": 1}, "OK", None))
        self.assertStartsWith(
            line, f"check {UNARY}: the request does not fit kittest.v1.UnaryRequest:"
        )
        self.assertIsNone(self.server.process.poll(), self.server.output())


if __name__ == "__main__":
    absltest.main()
