"""The traffic rules of a release, without a server: what is pinned, kept, split and restored."""

from __future__ import annotations

from absl.testing import absltest

from bazel.tools.release import traffic


class TrafficTest(absltest.TestCase):
    def test_revision_name_is_the_templates_and_ignores_its_name(self) -> None:
        template = {
            "metadata": {"annotations": {"a": "1"}},
            "spec": {"containers": [{"image": "i@sha256:1"}]},
        }
        name = traffic.revision_name("ping", template)
        self.assertRegex(name, r"^ping-[0-9a-f]{10}$")
        named = {**template, "metadata": {"name": "ping-x", "annotations": {"a": "1"}}}
        self.assertEqual(traffic.revision_name("ping", named), name)
        other = {**template, "spec": {"containers": [{"image": "i@sha256:2"}]}}
        self.assertNotEqual(traffic.revision_name("ping", other), name)

    def test_pinned_names_the_revision_behind_latest(self) -> None:
        status = [{"revisionName": "a", "percent": 100, "latestRevision": True}]
        self.assertEqual(traffic.pinned(status), [{"revisionName": "a", "percent": 100}])

    def test_candidate_keeps_every_entry_and_moves_its_tag(self) -> None:
        baseline = [
            {"revisionName": "a", "percent": 70},
            {"revisionName": "b", "percent": 30, "tag": "candidate"},
            {"revisionName": "c", "percent": 0, "tag": "blue"},
        ]
        self.assertEqual(
            traffic.with_candidate(baseline, "n"),
            [
                {"revisionName": "a", "percent": 70},
                {"revisionName": "b", "percent": 30},
                {"revisionName": "c", "percent": 0, "tag": "blue"},
                {"revisionName": "n", "percent": 0, "tag": "candidate"},
            ],
        )

    def test_steps_split_the_rest_in_proportion(self) -> None:
        baseline = [{"revisionName": "a", "percent": 67}, {"revisionName": "b", "percent": 33}]
        ten = traffic.step(baseline, "n", 10)
        self.assertEqual(traffic.serving(ten), {"n": 10, "a": 61, "b": 29})
        self.assertEqual(sum(traffic.serving(ten).values()), 100)
        full = traffic.step(baseline, "n", 100)
        self.assertEqual(traffic.serving(full), {"n": 100})
        self.assertIn({"revisionName": "a", "percent": 0, "tag": "previous"}, full)

    def test_rollback_to_previous(self) -> None:
        entries = [
            {"revisionName": "n", "percent": 100, "tag": "candidate"},
            {"revisionName": "a", "percent": 0, "tag": "previous"},
        ]
        result, previous, current = traffic.rolled_back(entries)
        self.assertEqual((previous, current), ("a", "n"))
        self.assertEqual(traffic.serving(result), {"a": 100})
        with self.assertRaisesRegex(ValueError, "no revision is tagged 'previous'"):
            traffic.rolled_back([{"revisionName": "n", "percent": 100}])

    def test_revision_before_the_serving_one(self) -> None:
        def revision(name: str, generation: int, ready: str = "True") -> dict:
            labels = {"serving.knative.dev/configurationGeneration": str(generation)}
            conditions = [{"type": "Ready", "status": ready}]
            return {
                "metadata": {"name": name, "labels": labels},
                "status": {"conditions": conditions},
            }

        history = [
            revision("c", 3),
            revision("a", 1),
            revision("b-failed", 2, ready="False"),
            revision("d-never-served", 5),  # newer than the serving one: a failed release's
            revision("current", 4),
        ]
        self.assertEqual(traffic.revision_before(history, "current"), "c")
        # Generation 10 after 9: ordered as numbers, not as text.
        self.assertEqual(traffic.revision_before([revision("x", 9), revision("y", 10)], "y"), "x")
        with self.assertRaisesRegex(ValueError, "no Ready revision older than a"):
            traffic.revision_before(history, "a")
        with self.assertRaisesRegex(ValueError, "'gone' is not among"):
            traffic.revision_before(history, "gone")

    def test_steps_parsed_and_checked(self) -> None:
        self.assertEqual(traffic.parse_steps("10,50,100"), [10, 50, 100])
        for bad in ("10,50", "50,10,100", "0,100", "x", "10,10,100"):
            with self.assertRaises(ValueError, msg=bad):
                traffic.parse_steps(bad)


if __name__ == "__main__":
    absltest.main()
