"""NoteHistory's bounds: per point, in notes overall, in bytes overall; oldest out first."""

from __future__ import annotations

from absl.testing import absltest
from routeguide.v1 import route_guide_pb2 as pb

from python.services.route_guide.note_history import NoteHistory


def note(lat: int, message: str) -> pb.RouteNote:
    return pb.RouteNote(location=pb.Point(latitude=lat, longitude=0), message=message)


def messages(history: NoteHistory, lat: int) -> list[str]:
    return [n.message for n in history.at(pb.Point(latitude=lat, longitude=0))]


class NoteHistoryTest(absltest.TestCase):
    def test_a_point_keeps_its_latest_notes(self) -> None:
        history = NoteHistory(per_point=3, notes=100, max_bytes=10_000)
        for index in range(10):
            history.add(note(1, str(index)))
        history.add(note(2, "elsewhere"))
        self.assertEqual(messages(history, 1), ["7", "8", "9"])
        self.assertEqual(messages(history, 2), ["elsewhere"])
        self.assertLen(history, 4)

    def test_the_oldest_notes_go_first_overall(self) -> None:
        history = NoteHistory(per_point=3, notes=4, max_bytes=10_000)
        for lat in range(1, 7):
            history.add(note(lat, f"at {lat}"))
        self.assertEqual([messages(history, lat) for lat in (1, 2)], [[], []])
        self.assertEqual(messages(history, 6), ["at 6"])
        self.assertLen(history, 4)

    def test_bytes_bound_the_history(self) -> None:
        big = "x" * 1000
        history = NoteHistory(per_point=10, notes=100, max_bytes=2500)
        for index in range(5):
            history.add(note(1, f"{index}{big}"))
        self.assertEqual([m[0] for m in messages(history, 1)], ["3", "4"])
        self.assertLessEqual(history.bytes, 2500)
        history.add(note(1, "y" * 3000))  # larger than the whole history: nothing is kept
        self.assertEqual((len(history), history.bytes), (0, 0))


if __name__ == "__main__":
    absltest.main()
