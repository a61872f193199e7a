"""Each requirements lock agrees with its input: re-lock after editing an input, never by hand."""

from pathlib import Path

from absl.testing import absltest, parameterized

from lock_file import lock_problems, parse_lock, read_lock, read_requirements_in

LOCKS = (
    ("requirements.in", "requirements_lock.txt"),
    ("tools/lock/requirements_tools.in", "tools/lock/requirements_tools_lock.txt"),
    ("tools/remote/requirements.in", "tools/remote/requirements_lock.txt"),
)

GOOD_LOCK = """\
grpcio==1.0 \\
    --hash=sha256:aa
    # via
    #   -r requirements.in
    #   grpcio-tools
grpcio-tools==1.0 \\
    --hash=sha256:bb
    # via -r requirements.in
typing-extensions==4.0 ; python_version < '3.13' \\
    --hash=sha256:cc
    # via grpcio
"""


class CheckedInLocksTest(parameterized.TestCase):
    @parameterized.parameters(*LOCKS)
    def test_lock_agrees_with_input(self, requirements_in: str, lock: str) -> None:
        problems = lock_problems(read_requirements_in(Path(requirements_in)), read_lock(Path(lock)))
        self.assertEqual(problems, [], f"re-lock {lock} with its requirements.update target")


class LockProblemsTest(absltest.TestCase):
    def test_consistent_lock_has_no_problems(self) -> None:
        pins = parse_lock(GOOD_LOCK)
        self.assertEqual([p.name for p in pins], ["grpcio", "grpcio-tools", "typing-extensions"])
        self.assertEqual(lock_problems(["grpcio", "grpcio_tools"], pins), [])

    def test_name_missing_from_lock(self) -> None:
        problems = lock_problems(["grpcio", "grpcio-tools", "absl-py"], parse_lock(GOOD_LOCK))
        self.assertEqual(problems, ["absl-py: asked for but not pinned in the lock"])

    def test_name_missing_from_input(self) -> None:
        problems = lock_problems(["grpcio"], parse_lock(GOOD_LOCK))
        self.assertEqual(problems, ["grpcio-tools==1.0: in the lock, but nothing asks for it"])

    def test_pin_without_hash(self) -> None:
        lock = GOOD_LOCK.replace(
            "grpcio-tools==1.0 \\\n    --hash=sha256:bb\n", "grpcio-tools==1.0\n"
        )
        problems = lock_problems(["grpcio", "grpcio-tools"], parse_lock(lock))
        self.assertEqual(problems, ["grpcio-tools==1.0: pinned without --hash"])


if __name__ == "__main__":
    absltest.main()
