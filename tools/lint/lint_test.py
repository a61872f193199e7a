"""//tools/lint, run as `bazel run` runs it, on a small workspace of its own (the kit's ruff.toml
and buf.yaml, a test proto, a Python file, a BUILD file and a stand-in for the sample-free
check): one line per check, exit 1 when one fails with the failure's output (buf's rule and the
sample-free check's targets included), and `--fix` fixing what can be fixed.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from absl.testing import absltest

# Where each file of the test's workspace comes from.
COPIED = {
    "ruff.toml": "ruff.toml",
    "proto/buf.yaml": "proto/buf.yaml",
    "proto/cart/v1/cart.proto": os.environ["CART_PROTO"],
}
CHECKS = ("ruff check", "ruff format", "buildifier", "buf lint", "sample free")
FORMATTED_PYTHON = '"""A module."""\n\nVALUE = 1\n'
FORMATTED_BUILD = 'filegroup(\n    name = "files",\n    srcs = [],\n)\n'
# The real sample-free check queries Bazel; this stand-in fails naming the targets listed in
# `depends_on_a_sample`, which it reads relative to where lint runs it (the workspace's root).
SAMPLE_FREE = (
    '"""A stand-in for the sample-free check."""\n\n'
    "import pathlib\n"
    "import sys\n\n"
    'found = pathlib.Path("depends_on_a_sample").read_text().split()\n'
    "for target in found:\n"
    '    print(f"depends on a sample: {target}")\n'
    "sys.exit(1 if found else 0)\n"
)


class LintTest(absltest.TestCase):
    def setUp(self) -> None:
        super().setUp()
        self.workspace = Path(self.create_tempdir().full_path)
        for path, source in COPIED.items():
            (self.workspace / path).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source, self.workspace / path)
        self.write("module.py", FORMATTED_PYTHON)
        self.write("BUILD.bazel", FORMATTED_BUILD)
        self.write("tools/sample_free/check.py", SAMPLE_FREE)
        self.write("depends_on_a_sample", "")

    def write(self, path: str, text: str) -> None:
        (self.workspace / path).parent.mkdir(parents=True, exist_ok=True)
        (self.workspace / path).write_text(text)

    def lint(self, *args: str) -> subprocess.CompletedProcess[str]:
        tools = [f"--tool={name}={os.environ[name.upper()]}" for name in ("buf", "buildifier")]
        return subprocess.run(
            [os.environ["LINT"], *tools, *args],
            env={
                **os.environ,
                "BUILD_WORKSPACE_DIRECTORY": str(self.workspace),
                "BUF_CACHE_DIR": self.create_tempdir().full_path,
            },
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )

    def status_lines(self, output: str) -> list[str]:
        return [line for line in output.splitlines() if not line.startswith(" ")]

    def test_clean_workspace_passes_every_check(self) -> None:
        result = self.lint()
        self.assertEqual(result.returncode, 0, result.stdout + result.stderr)
        self.assertEqual(self.status_lines(result.stdout), [f"ok      {name}" for name in CHECKS])

    def test_a_proto_off_style_fails_buf_lint_naming_the_rule(self) -> None:
        self.write(
            "proto/shop/v1/shop.proto",
            'syntax = "proto3";\n\npackage shop.v1;\n\nmessage cart_item {\n  string id = 1;\n}\n',
        )
        result = self.lint()
        self.assertEqual(result.returncode, 1, result.stdout + result.stderr)
        self.assertEqual(
            self.status_lines(result.stdout),
            [
                "ok      ruff check",
                "ok      ruff format",
                "ok      buildifier",
                "FAILED  buf lint (exit 100)",
                "ok      sample free",
            ],
        )
        self.assertRegex(
            result.stdout, r"\n        proto/shop/v1/shop\.proto:5:9: .*\(MESSAGE_PASCAL_CASE\)"
        )

    def test_a_target_depending_on_a_sample_fails_naming_it(self) -> None:
        self.write("depends_on_a_sample", "//tools/x:y\n")
        for args in ((), ("--fix",)):  # it has no fix: --fix fails the same
            result = self.lint(*args)
            self.assertEqual(result.returncode, 1, result.stdout + result.stderr)
            self.assertEqual(
                self.status_lines(result.stdout),
                [f"ok      {name}" for name in CHECKS[:-1]] + ["FAILED  sample free (exit 1)"],
            )
            self.assertIn("\n        depends on a sample: //tools/x:y\n", result.stdout)

    def test_fix_formats_python_and_build_files(self) -> None:
        self.write("module.py", '"""A module."""\nimport os\nVALUE=1\n')
        self.write("BUILD.bazel", 'filegroup(name="files",srcs=[])\n')
        checked = self.lint()
        self.assertEqual(checked.returncode, 1, checked.stdout + checked.stderr)
        self.assertEqual(
            self.status_lines(checked.stdout),
            [
                "FAILED  ruff check (exit 1)",
                "FAILED  ruff format (exit 1)",
                "FAILED  buildifier (exit 4)",
                "ok      buf lint",
                "ok      sample free",
            ],
        )
        fixed = self.lint("--fix")
        self.assertEqual(fixed.returncode, 0, fixed.stdout + fixed.stderr)
        self.assertEqual((self.workspace / "module.py").read_text(), FORMATTED_PYTHON)
        self.assertEqual((self.workspace / "BUILD.bazel").read_text(), FORMATTED_BUILD)

    def test_bad_usage_exits_2(self) -> None:
        self.assertEqual(self.lint("--frobnicate").returncode, 2)


if __name__ == "__main__":
    absltest.main()
