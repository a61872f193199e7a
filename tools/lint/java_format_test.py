"""//tools/lint:java_format against a workspace of its own: the check names a badly formatted
file and fails, --fix rewrites it and the check passes; files under Bazel's output links are
left alone. The real formatter runs (the jar on @host_jdk), so a broken fetch or launcher fails
here too."""

from __future__ import annotations

import contextlib
import io
import os
import tempfile
from pathlib import Path
from unittest import mock

from absl.testing import absltest

from tools.lint import java_format

BAD = "class Bad { void f() {int x=1;} }\n"
GOOD = "class Good {\n  void f() {\n    int x = 1;\n  }\n}\n"


class JavaFormatTest(absltest.TestCase):
    def setUp(self) -> None:
        self.workspace = Path(tempfile.mkdtemp(dir=os.environ.get("TEST_TMPDIR")))
        (self.workspace / "src").mkdir()
        (self.workspace / "src/Bad.java").write_text(BAD)
        (self.workspace / "src/Good.java").write_text(GOOD)
        (self.workspace / "bazel-out").mkdir()
        (self.workspace / "bazel-out/Generated.java").write_text(BAD)
        self.formatter = Path(os.environ["GOOGLE_JAVA_FORMAT"]).absolute()

    def run_it(self, fix: bool) -> tuple[int, str]:
        out = io.StringIO()
        with (
            mock.patch.dict(os.environ, {"BUILD_WORKSPACE_DIRECTORY": str(self.workspace)}),
            contextlib.redirect_stdout(out),
        ):
            status = java_format.java_format(self.formatter, fix=fix)
        return status, out.getvalue()

    def test_files_are_found_outside_output_links(self) -> None:
        self.assertEqual(java_format.java_files(self.workspace), ["src/Bad.java", "src/Good.java"])

    def test_check_fails_then_fix_formats(self) -> None:
        status, _ = self.run_it(fix=False)
        self.assertEqual(status, 1)
        self.assertEqual((self.workspace / "src/Bad.java").read_text(), BAD)  # check only
        status, _ = self.run_it(fix=True)
        self.assertEqual(status, 0)
        fixed = (self.workspace / "src/Bad.java").read_text()
        self.assertEqual(fixed, GOOD.replace("Good", "Bad"))
        self.assertEqual((self.workspace / "bazel-out/Generated.java").read_text(), BAD)


if __name__ == "__main__":
    absltest.main()
