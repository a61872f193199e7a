"""The docs stay true to the tree: every relative link in README.md and docs/ reaches a file
(and a heading, when it names one), and every setting of the manifest rule is documented.

Links rot when a page is renamed or a heading reworded; a setting goes undocumented when the rule
grows an attribute. Both are found here rather than by a reader.
"""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

from absl.testing import absltest

from bazel.tools.manifest_settings import Settings

ROOT = Path(__file__).resolve().parents[2]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
LINK = re.compile(r"\]\(([^)\s]+)\)")
HEADING = re.compile(r"^#+\s+(.*)$", re.MULTILINE)
FENCE = re.compile(r"^```.*?^```", re.MULTILINE | re.DOTALL)
SCHEME = re.compile(r"[a-z][a-z0-9+.-]*:")
# Where the settings are documented: one row each in the manifests page, or the environments
# page for what an environment sets for every service.
SETTINGS_PAGES = ("docs/manifests.md", "docs/environments.md")


def anchor(heading: str) -> str:
    """The anchor GitHub gives a heading: lower case, punctuation dropped, spaces to hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def prose(page: Path) -> str:
    """The page without its code blocks, whose brackets are not links."""
    return FENCE.sub("", page.read_text(encoding="utf-8"))


class DocsTest(absltest.TestCase):
    def test_pages_exist(self) -> None:
        self.assertGreater(len(PAGES), 10, [str(p) for p in PAGES])

    def test_relative_links_reach_a_file_and_heading(self) -> None:
        anchors = {
            page: {anchor(h) for h in HEADING.findall(page.read_text(encoding="utf-8"))}
            for page in PAGES
        }
        broken = []
        for page in PAGES:
            for target in LINK.findall(prose(page)):
                if SCHEME.match(target):
                    continue
                path, _, fragment = target.partition("#")
                resolved = (page.parent / path).resolve() if path else page
                name = f"{page.relative_to(ROOT)}: {target}"
                if resolved.suffix != ".md":
                    # The test sees only the pages (its data): code is named, not linked.
                    broken.append(f"{name} (not a page; name the file in backticks instead)")
                elif not resolved.exists():
                    broken.append(f"{name} (no such file)")
                elif fragment and resolved in anchors and fragment not in anchors[resolved]:
                    broken.append(f"{name} (no such heading)")
        self.assertEqual(broken, [])

    def test_every_manifest_setting_is_documented(self) -> None:
        text = "".join((ROOT / page).read_text(encoding="utf-8") for page in SETTINGS_PAGES)
        missing = [
            field.name
            for field in dataclasses.fields(Settings)
            if f"`{field.name}`" not in text and f"| {field.name} |" not in text
        ]
        self.assertEqual(missing, [], f"not in {' or '.join(SETTINGS_PAGES)}")


if __name__ == "__main__":
    absltest.main()
