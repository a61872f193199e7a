"""With --stamp, the image config labels the source revision and release from Bazel's
workspace status (tools/workspace_status.sh); without it, nothing."""

import os
import tempfile
from pathlib import Path

from absl.testing import absltest

from bazel.tools.oci_image import stamp_labels


class StampLabelsTest(absltest.TestCase):
    def test_labels_from_status_files(self) -> None:
        directory = Path(tempfile.mkdtemp(dir=os.environ.get("TEST_TMPDIR")))
        stable = directory / "stable-status.txt"
        stable.write_text("BUILD_EMBED_LABEL \nSTABLE_GIT_COMMIT 32af46c\nSTABLE_RELEASE v1.2.3\n")
        volatile = directory / "volatile-status.txt"
        volatile.write_text("BUILD_TIMESTAMP 1795241207\n")
        self.assertEqual(
            stamp_labels([str(stable), str(volatile)]),
            {
                "org.opencontainers.image.revision": "32af46c",
                "org.opencontainers.image.version": "v1.2.3",
            },
        )

    def test_unstamped_build_has_no_labels(self) -> None:
        self.assertEqual(stamp_labels([]), {})


if __name__ == "__main__":
    absltest.main()
