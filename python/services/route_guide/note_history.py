"""RouteChat's memory of the notes of one call, bounded however many a client sends.

A chat answers each note with the notes left earlier at its point. Kept whole, the history
grows with every note sent, and the replies to n notes at one point with n squared (2,000
notes drew 1,999,000 replies). Here a point keeps only its latest `per_point` notes, and the
whole history at most `notes` notes and `max_bytes` bytes, the oldest going first; so each note
draws at most `per_point` replies, and a call holds at most `max_bytes` of notes.
"""

from __future__ import annotations

import collections
import itertools

from routeguide.v1 import route_guide_pb2

Key = tuple[int, int]


class NoteHistory:
    def __init__(self, per_point: int, notes: int, max_bytes: int) -> None:
        self._per_point = per_point
        self._max_notes = notes
        self._max_bytes = max_bytes
        self._bytes = 0
        self._order = itertools.count()
        # Every note kept, oldest first, by arrival number; and each point's arrival numbers.
        self._kept: collections.OrderedDict[int, tuple[Key, route_guide_pb2.RouteNote, int]] = (
            collections.OrderedDict()
        )
        self._at: dict[Key, collections.deque[int]] = {}

    def __len__(self) -> int:
        return len(self._kept)

    @property
    def bytes(self) -> int:
        return self._bytes

    def at(self, point: route_guide_pb2.Point) -> list[route_guide_pb2.RouteNote]:
        """The notes kept at `point`, oldest first."""
        return [self._kept[number][1] for number in self._at.get(_key(point), ())]

    def add(self, note: route_guide_pb2.RouteNote) -> None:
        key, size = _key(note.location), note.ByteSize()
        number = next(self._order)
        self._kept[number] = (key, note, size)
        self._at.setdefault(key, collections.deque()).append(number)
        self._bytes += size
        if len(self._at[key]) > self._per_point:
            self._forget(self._at[key][0])
        while len(self._kept) > self._max_notes or self._bytes > self._max_bytes:
            self._forget(next(iter(self._kept)))

    def _forget(self, number: int) -> None:
        """Drops a note that is the oldest kept at its point."""
        key, _, size = self._kept.pop(number)
        here = self._at[key]
        here.popleft()
        if not here:
            del self._at[key]
        self._bytes -= size


def _key(point: route_guide_pb2.Point) -> Key:
    return (point.latitude, point.longitude)
