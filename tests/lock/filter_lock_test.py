"""The image's package set from a universal lock: pins whose environment marker excludes the
image (CPython 3.13, Linux, x86_64) are left out, and so is what only they need, while pins whose
marker holds there stay, hashes and all, with the marker gone (pip would judge it by the build's
Python)."""

from absl.testing import absltest
from filter_lock import FilterError, filter_lock, target_environment

from lock_file import parse_lock

LOCK = """\
cffi==1.17.1 ; platform_python_implementation != 'PyPy' \\
    --hash=sha256:c1
    # via -r requirements.in
click==8.1.7 \\
    --hash=sha256:c2
    # via -r requirements.in
colorama==0.4.6 ; sys_platform == 'win32' \\
    --hash=sha256:c3 \\
    --hash=sha256:c4
    # via click
pycparser==2.22 ; implementation_name != 'PyPy' \\
    --hash=sha256:c5
    # via cffi
tomli==2.0.1 ; python_version < '3.10' \\
    --hash=sha256:c6
    # via -r requirements.in
uvloop==0.21.0 ; sys_platform != 'win32' and platform_machine == 'x86_64' \\
    --hash=sha256:c7
    # via -r requirements.in
win-helper==1.0 \\
    --hash=sha256:c8
    # via colorama
"""
ROOTS = ["click", "cffi", "tomli", "uvloop"]
IMAGE = target_environment("3.13", ["manylinux_2_41_x86_64"])


class FilterLockTest(absltest.TestCase):
    def test_markers_are_read_from_the_lock(self) -> None:
        pins = {pin.name: pin for pin in parse_lock(LOCK)}
        self.assertEqual(pins["colorama"].marker, "sys_platform == 'win32'")
        self.assertEqual(pins["colorama"].hashes, ["sha256:c3", "sha256:c4"])
        self.assertEqual(pins["click"].marker, "")

    def test_image_gets_only_what_its_markers_allow(self) -> None:
        self.assertEqual(
            filter_lock(LOCK, ROOTS, IMAGE).splitlines(),
            [
                "cffi==1.17.1 --hash=sha256:c1",
                "click==8.1.7 --hash=sha256:c2",
                "pycparser==2.22 --hash=sha256:c5",
                "uvloop==0.21.0 --hash=sha256:c7",
                "# left out, not for the target: colorama==0.4.6 ; sys_platform == 'win32'",
                "# left out, not for the target: tomli==2.0.1 ; python_version < '3.10'",
            ],
        )

    def test_markers_follow_the_target_not_the_build(self) -> None:
        old_python = target_environment("3.9", ["manylinux_2_17_x86_64"])
        self.assertIn("tomli==2.0.1 --hash=sha256:c6", filter_lock(LOCK, ROOTS, old_python))
        arm = target_environment("3.13", ["manylinux_2_41_aarch64", "manylinux2014_aarch64"])
        self.assertEqual(arm["platform_machine"], "aarch64")
        self.assertNotIn("uvloop==0.21.0 --hash", filter_lock(LOCK, ROOTS, arm))

    def test_refusals(self) -> None:
        with self.assertRaisesRegex(FilterError, "'win_amd64' is not a Linux wheel tag"):
            target_environment("3.13", ["win_amd64"])
        with self.assertRaisesRegex(FilterError, "not of one machine"):
            target_environment("3.13", ["manylinux_2_41_x86_64", "manylinux_2_41_aarch64"])
        with self.assertRaisesRegex(FilterError, "requests is not in the lock"):
            filter_lock(LOCK, ["requests"], IMAGE)
        with self.assertRaisesRegex(FilterError, "broken==1.0"):
            filter_lock(
                "broken==1.0 ; sys_platform = 'linux' \\\n    --hash=sha256:c9\n", ["broken"], IMAGE
            )


if __name__ == "__main__":
    absltest.main()
