"""proto_breaking, run as `bazel run` runs it, on a git repository made of the kit's buf.yaml and
a test proto: no change passes; a renumbered field and a removed RPC fail, naming the file and
buf's rule; a ref that names no commit is one line and exit 2.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

from absl.testing import absltest

# Where each file of the test's repository comes from.
COPIED = {"proto/buf.yaml": "proto/buf.yaml", "proto/cart/v1/cart.proto": os.environ["CART_PROTO"]}
CART = "proto/cart/v1/cart.proto"


class ProtoBreakingTest(absltest.TestCase):
    def setUp(self) -> None:
        super().setUp()
        self.repository = Path(self.create_tempdir().full_path)
        for path, source in COPIED.items():
            (self.repository / path).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source, self.repository / path)
        self.git("init", "--quiet", "--initial-branch=main")
        self.commit("the protos as the kit has them")

    def git(self, *args: str) -> str:
        return subprocess.run(
            ["git", "-c", "user.name=t", "-c", "user.email=t@t", *args],
            cwd=self.repository,
            capture_output=True,
            text=True,
            check=True,
        ).stdout

    def commit(self, message: str) -> None:
        self.git("add", "--all")
        self.git("commit", "--quiet", "--allow-empty", "-m", message)

    def edit(self, path: str, old: str, new: str) -> None:
        file = self.repository / path
        text = file.read_text()
        self.assertIn(old, text)
        file.write_text(text.replace(old, new, 1))

    def check(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [os.environ["PROTO_BREAKING"], os.environ["BUF"], *args],
            env={
                **os.environ,
                "BUILD_WORKSPACE_DIRECTORY": str(self.repository),
                # buf's cache in the test's own directory, not the user's.
                "BUF_CACHE_DIR": self.create_tempdir().full_path,
            },
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )

    def test_no_change_passes(self) -> None:
        result = self.check("--against=main")
        self.assertEqual(result.returncode, 0, result.stdout + result.stderr)
        self.assertIn("compatible with main", result.stdout)

    def test_a_compatible_change_passes(self) -> None:
        self.edit(
            CART, "  int32 item_count = 2;\n}", "  int32 item_count = 2;\n  string note = 3;\n}"
        )
        self.commit("a new field")
        result = self.check("--against=HEAD~1")
        self.assertEqual(result.returncode, 0, result.stdout + result.stderr)

    def test_renumbered_field_fails(self) -> None:
        self.edit(CART, "int32 item_count = 2;", "int32 item_count = 4;")
        self.commit("item_count renumbered")
        result = self.check("--against=HEAD~1")
        self.assertEqual(result.returncode, 1, result.stdout + result.stderr)
        self.assertRegex(result.stdout, rf"(?m)^{re.escape(CART)}:\d+:\d+: .*\(FIELD_NO_DELETE\)$")
        self.assertIn('field "2" with name "item_count"', result.stdout)

    def test_removed_rpc_fails_before_it_is_committed(self) -> None:
        self.edit(CART, "  rpc ClearCart(ClearCartRequest) returns (ClearCartResponse);\n", "")
        result = self.check("--against=HEAD")
        self.assertEqual(result.returncode, 1, result.stdout + result.stderr)
        self.assertRegex(result.stdout, rf"(?m)^{re.escape(CART)}:\d+:\d+: .*\(RPC_NO_DELETE\)$")
        self.assertIn('RPC "ClearCart"', result.stdout)

    def test_bad_ref_is_one_line_and_exit_2(self) -> None:
        result = self.check("--against=no-such-branch")
        self.assertEqual(result.returncode, 2, result.stdout + result.stderr)
        self.assertEqual(len(result.stderr.splitlines()), 1, result.stderr)
        self.assertIn("--against=no-such-branch is not a commit", result.stderr)
        self.assertEqual(result.stdout, "")

    def test_ref_without_protos_has_nothing_to_break(self) -> None:
        empty_tree = self.git("hash-object", "-t", "tree", "-w", "/dev/null").strip()
        root = self.git("commit-tree", empty_tree, "-m", "before the protos").strip()
        self.git("branch", "empty", root)
        result = self.check("--against=empty")
        self.assertEqual(result.returncode, 0, result.stdout + result.stderr)
        self.assertIn("has no proto/", result.stdout)


if __name__ == "__main__":
    absltest.main()
