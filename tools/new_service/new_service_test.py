"""new_service, run as `bazel run` runs it, on a copy of this repository's deploy files: what it
writes, what it refuses (exit 2, one line, nothing written), and a failed write that leaves
nothing behind, so that the same command run again succeeds.

That the written service builds, passes its test and deploys is checked where it can be: in the
workspace itself (docs/new-service.md), since a build here would need the whole kit.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from unittest import mock

from absl.testing import absltest
from ruff.__main__ import find_ruff_bin

from tools.new_service import files, names, scaffold

# The tests scaffold `ledger-check` into a copy of the repository's deploy files, a name its own
# services leave free (the tool refuses one declared already): a user's `order-history`, the
# docs' example, must not fail them.
# What the workspace copy holds besides its files: the samples' directories.
SAMPLE_DIRECTORIES = ("proto/ping/v1", "proto/routeguide/v1", "python/services/ping")
COPIED = (
    "ruff.toml",
    "proto/buf.yaml",
    "deploy/BUILD.bazel",
    "deploy/environments/local.json",
    "deploy/environments/production.json",
    "deploy/environments/staging.json",
)


def snapshot(root: Path) -> dict[str, bytes | None]:
    """Every file's content and every directory (None) under root."""
    return {
        str(path.relative_to(root)): None if path.is_dir() else path.read_bytes()
        for path in sorted(root.rglob("*"))
    }


class NewServiceTest(absltest.TestCase):
    def setUp(self) -> None:
        super().setUp()
        self.workspace = Path(self.create_tempdir().full_path)
        for path in COPIED:
            (self.workspace / path).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, self.workspace / path)
        for directory in SAMPLE_DIRECTORIES:
            (self.workspace / directory).mkdir(parents=True)

    def run_tool(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [os.environ["NEW_SERVICE"], *args],
            env={**os.environ, "BUILD_WORKSPACE_DIRECTORY": str(self.workspace)},
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )

    def read(self, path: str) -> str:
        return (self.workspace / path).read_text()

    def entries(self) -> list[str]:
        """The argument names of the copy's `services(...)` call, in order (`name` first): the
        repository's own services, whichever they are, and those the tool added."""
        call = self.read("deploy/BUILD.bazel").split("\nservices(\n")[1].split("\n)\n")[0]
        return re.findall(r"^    (\w+) = ", call, re.MULTILINE)

    def test_writes_the_service_under_its_two_spellings(self) -> None:
        before = self.entries()[1:]
        result = self.run_tool("ledger-check")
        self.assertEqual(result.returncode, 0, result.stderr)
        proto = self.read("proto/ledger_check/v1/ledger_check.proto")
        self.assertIn("package ledger_check.v1;", proto)
        self.assertIn("service LedgerCheckService {", proto)
        self.assertIn('java_package = "com.example.ledger_check.v1"', proto)
        proto_build = self.read("proto/ledger_check/v1/BUILD.bazel")
        for target in ("_proto", "_py_pb2", "_py_pb2_grpc", "_java_proto", "_java_grpc"):
            self.assertIn(f'name = "ledger_check{target}"', proto_build)
        service = "python/services/ledger_check/"
        self.assertIn('app.run("ledger-check", services)', self.read(service + "main.py"))
        self.assertIn(
            "class LedgerCheckServicer(pb2_grpc.LedgerCheckServiceServicer):",
            self.read(service + "servicer.py"),
        )
        self.assertIn('"SERVER": "$(rootpath :server)"', self.read(service + "BUILD.bazel"))
        for module in ("main.py", "servicer.py", "servicer_test.py"):
            compile(self.read(service + module), module, "exec")  # a SyntaxError fails here
        self.assertIn(
            "\n    # LedgerCheckService.\n"
            '    ledger_check = "//python/services/ledger_check:server",\n',
            self.read("deploy/BUILD.bazel"),
        )
        self.assertEqual(self.entries(), ["name", *sorted({*before, "ledger_check"})])
        self.assertEqual(result.stdout.count("wrote "), 7)
        self.assertEqual([p for p in self.workspace.rglob("*") if p.name.endswith(".tmp")], [])

    def test_what_it_writes_passes_the_linters(self) -> None:
        # The longest name too, which pushes lines past the line length in every template.
        longest, _ = scaffold.max_length(self.workspace)
        self.assertEqual(self.run_tool("ledger-check").returncode, 0)
        self.assertEqual(self.run_tool("a" * (longest - 9) + "-" + "b" * 8).returncode, 0)
        written = [str(self.workspace / path) for path in ("proto", "python", "deploy")]
        for command in (
            [find_ruff_bin(), "check", "--no-cache", *written],
            [find_ruff_bin(), "format", "--check", "--no-cache", *written],
            [Path(os.environ["BUILDIFIER"]).resolve(), "-mode=check", "-lint=warn", "-r", *written],
            [Path(os.environ["BUF"]).resolve(), "lint", "proto"],
        ):
            lint = subprocess.run(
                command,
                cwd=self.workspace,
                # buf's cache in the test's own directory, not the user's.
                env={**os.environ, "BUF_CACHE_DIR": self.create_tempdir().full_path},
                capture_output=True,
                text=True,
            )
            self.assertEqual(lint.returncode, 0, f"{command}\n{lint.stdout}{lint.stderr}")

    def test_refusals_are_one_line_exit_2_and_write_nothing(self) -> None:
        before = snapshot(self.workspace)
        refused = {
            "ping": "proto/ping exists",
            "routeguide": "proto/routeguide exists",
            "route-guide": "declares route_guide already",
            "route-guide-push": "declares route_guide_push already",
            "base-layer": "declares base_layer already",
            "push": "declares push already",
            "name": "declares name already",
            "release": "declares release already",
            "rollback": "declares rollback already",
            "ping-image": "declares ping_image already",
            "Foo": "lowercase letters, digits and hyphens",
            "1abc": "a letter first",
            "a_b": "write order_history as order-history",
            "abc-": "no hyphen last",
            "a" * 50: "50 characters, Cloud Run allows at most 49",
            "": "the name is empty",
            "class": "keyword",
            "public": "keyword",
            "json": "would shadow the Python module json",
            "grpc": "would shadow the Python module grpc",
        }
        for name, reason in refused.items():
            with self.subTest(name=name):
                result = self.run_tool(name)
                self.assertEqual(result.returncode, 2, result.stderr)
                self.assertEqual(result.stdout, "")
                self.assertEqual(len(result.stderr.splitlines()), 1, result.stderr)
                self.assertStartsWith(result.stderr, "new_service: ")
                self.assertIn(reason, result.stderr)
        self.assertEqual(snapshot(self.workspace), before)

    def test_the_longest_name_is_accepted_and_goes_in_order(self) -> None:
        before = self.entries()[1:]
        longest = "a" * (scaffold.max_length(self.workspace)[0] - 1) + "1"
        self.assertEqual(self.run_tool(longest).returncode, 0)
        self.assertEqual(self.run_tool("zeta").returncode, 0)
        self.assertEqual(self.run_tool("ping-two").returncode, 0)
        self.assertEqual(self.entries(), ["name", *sorted({*before, longest, "ping_two", "zeta"})])

    def test_the_longest_name_is_what_every_environment_can_deploy(self) -> None:
        # Cloud Run's 49 less what the longest service_name template adds to the name.
        cases = (
            ("{service}-staging", "{service}-local", 41, "staging.json"),
            ("{service}-staging", "{service}-local-sandbox", 35, "local.json"),
        )
        environments = self.workspace / "deploy/environments"
        for staging, local, limit, environment in cases:
            with self.subTest(local=local):
                (environments / "staging.json").write_text(json.dumps({"service_name": staging}))
                (environments / "local.json").write_text(json.dumps({"service_name": local}))
                template = staging if environment == "staging.json" else local
                before = snapshot(self.workspace)
                result = self.run_tool("a" * (limit + 1))
                self.assertEqual(result.returncode, 2, result.stderr)
                self.assertEqual(result.stdout, "")
                self.assertEqual(
                    result.stderr,
                    f"new_service: {'a' * (limit + 1)}: {limit + 1} characters, "
                    f'deploy/environments/{environment} names services "{template}", '
                    f"so Cloud Run allows at most {limit}\n",
                )
                self.assertEqual(snapshot(self.workspace), before)
                result = self.run_tool("b" * limit)
                self.assertEqual(result.returncode, 0, result.stderr)

    def test_a_name_an_environment_file_uses_is_refused(self) -> None:
        staging = self.workspace / "deploy/environments/staging.json"
        staging.write_text('{"services": {"ping": {"service": "ping-two"}, "orphan": {}}}')
        for name, reason in {
            "ping-two": "staging.json gives ping that Cloud Run name",
            "orphan": "staging.json has its settings already",
        }.items():
            result = self.run_tool(name)
            self.assertEqual(result.returncode, 2, result.stderr)
            self.assertIn(reason, result.stderr)

    def test_usage_without_a_name_or_a_workspace(self) -> None:
        for args in ((), ("a", "b")):
            result = self.run_tool(*args)
            self.assertEqual((result.returncode, result.stderr.count("\n")), (2, 1), args)
        result = subprocess.run(
            [os.environ["NEW_SERVICE"], "fine"],
            env={k: v for k, v in os.environ.items() if k != "BUILD_WORKSPACE_DIRECTORY"},
            capture_output=True,
            text=True,
            check=False,
        )
        self.assertEqual(result.returncode, 2)
        self.assertIn("no workspace", result.stderr)

    def test_a_workspace_of_another_layout_is_one_line_exit_1(self) -> None:
        (self.workspace / "deploy/BUILD.bazel").unlink()
        result = self.run_tool("ledger-check")
        self.assertEqual(result.returncode, 1)
        self.assertEqual(
            result.stderr,
            "new_service: cannot read deploy/BUILD.bazel: No such file or directory\n",
        )

    def test_a_failed_write_leaves_nothing_so_a_rerun_succeeds(self) -> None:
        # The proto files are staged, then python/services/NAME cannot be made: a file is there.
        (self.workspace / "python/services").rename(self.workspace / "services")
        (self.workspace / "python/services").write_text("in the way\n")
        before = snapshot(self.workspace)
        result = self.run_tool("ledger-check")
        self.assertEqual(result.returncode, 1)
        self.assertEqual(len(result.stderr.splitlines()), 1, result.stderr)
        self.assertIn("cannot write python/services/ledger_check/BUILD.bazel", result.stderr)
        self.assertEqual(snapshot(self.workspace), before)

        (self.workspace / "python/services").unlink()
        (self.workspace / "services").rename(self.workspace / "python/services")
        result = self.run_tool("ledger-check")
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertTrue((self.workspace / "proto/ledger_check/v1/BUILD.bazel").is_file())

    def test_a_failed_rename_puts_back_what_it_replaced(self) -> None:
        (self.workspace / "kept.txt").write_text("old\n")
        before = snapshot(self.workspace)
        plan = [
            files.File(Path("new/dir/a.txt"), "a\n"),
            files.File(Path("kept.txt"), "new\n"),
            files.File(Path("b.txt"), "b\n"),
        ]
        replace = Path.replace
        calls = []

        def third_fails(self: Path, target: Path) -> Path:
            calls.append(target)
            if len(calls) == 3:
                raise OSError(28, "No space left on device")
            return replace(self, target)

        with mock.patch.object(Path, "replace", third_fails), self.assertRaises(files.WriteError):
            files.write_all(self.workspace, plan)
        self.assertEqual(snapshot(self.workspace), before)

    def test_the_suffixes_are_the_macros(self) -> None:
        macro = Path("bazel/private/cloud_run_service.bzl").read_text()
        declared = set(re.findall(r'name = name \+ "(_\w+)"', macro))
        self.assertEqual(declared, set(scaffold.MACRO_SUFFIXES))

    def test_the_naming_rule(self) -> None:
        service = names.parse("order-history")
        self.assertEqual((service.bazel, service.camel), ("order_history", "OrderHistory"))
        service = names.parse("a1-b2c")
        self.assertEqual((service.bazel, service.camel), ("a1_b2c", "A1B2c"))


if __name__ == "__main__":
    absltest.main()
