"""Every client binary, the kit's (//python/client) and each service's, has the kit's
subcommands and takes the global flags on either side of each subcommand: its help says so.
Shared by the kit's client test and the samples' client tests (python/services/*)."""

from __future__ import annotations

import re

from absl.testing import absltest

from tests.e2e.processes import run

KIT_SUBCOMMANDS = ("health", "call", "list", "describe")
GLOBAL_FLAGS = (
    "--server",
    "--insecure",
    "--ca_cert",
    "--authority",
    "--auth",
    "--noauth",
    "--audience",
    "--token_file",
    "--timeout",
    "--wait_for_ready",
    "--json",
    "--header",
)


def assert_help(test: absltest.TestCase, binary_var: str, own: tuple[str, ...] = ()) -> None:
    """The binary in `binary_var` offers exactly its `own` subcommands and the kit's, and each
    one's help lists the global flags."""
    result = run(binary_var, "--help")
    test.assertEqual(result.returncode, 0, result.stderr)
    listed = result.stdout.partition("\nsubcommands:\n")[2]
    offered = re.findall(r"^    ([a-z][a-z-]*)(?:\s|$)", listed, re.MULTILINE)
    test.assertCountEqual(offered, (*own, *KIT_SUBCOMMANDS), result.stdout)
    for subcommand in (*own, *KIT_SUBCOMMANDS):
        with test.subTest(subcommand):
            result = run(binary_var, subcommand, "--help")
            test.assertEqual(result.returncode, 0, result.stderr)
            test.assertIn("global flags (before or after SUBCOMMAND)", result.stdout)
            for flag in GLOBAL_FLAGS:
                test.assertRegex(result.stdout, rf"{re.escape(flag)}\b")
