"""Events sent at their time, not as soon as they are made.

Modes put notes on the :class:`Scheduler` ahead of time (a note-on and its note-off, linked);
the session loop asks it for what is due (:meth:`Scheduler.due`) and waits until
:meth:`Scheduler.next_time`. The rule for events that come due late (the loop woke late, or a
mode produced them too late):

* a note-on up to ``late_limit`` seconds (default 30 ms) behind its time is sent at once
  (**shifted**); one later than that is **dropped**, and its note-off with it, so a late note
  never sounds cut short or out of place;
* a note-off is always sent (late if need be), so no note is left hanging;
* other events (control changes) are sent at once, however late.

Every note-on's lateness is kept (:attr:`Stats.lateness`): the benchmark's jitter and missed
deadlines are these figures (a missed deadline is a note-on dropped, or sent later than the
limit).
"""

from __future__ import annotations

import heapq
import itertools
from dataclasses import dataclass, field

from musegen.live.ports import MidiEvent, note_off, note_on

LATE_LIMIT = 0.030  # seconds: later note-ons are dropped


@dataclass(order=True)
class Scheduled:
    """One event waiting for its time."""

    time: float
    seq: int
    event: MidiEvent = field(compare=False)
    part: str = field(default="", compare=False)
    note_id: int = field(default=-1, compare=False)  # links a note-on to its note-off
    tag: str = field(default="", compare=False)  # lets a mode cancel a group (e.g. "release")


@dataclass
class Sent:
    """An event handed to the port, when it was due and when it went."""

    due: float
    sent: float
    event: MidiEvent
    part: str

    @property
    def late(self) -> float:
        return self.sent - self.due


@dataclass
class Stats:
    sent: int = 0
    shifted: int = 0  # note-ons sent late, within the limit
    dropped: int = 0  # note-ons dropped (with their note-offs)
    lateness: list[float] = field(default_factory=list)  # every sent note-on's lateness

    def missed(self, limit: float = LATE_LIMIT) -> int:
        return self.dropped + sum(1 for x in self.lateness if x > limit)


class Scheduler:
    """A time-ordered queue of MIDI events with the late rule of the module docstring."""

    def __init__(self, late_limit: float = LATE_LIMIT) -> None:
        self.late_limit = late_limit
        self._heap: list[Scheduled] = []
        self._seq = itertools.count()
        self._ids = itertools.count()
        self._dropped_ids: set[int] = set()
        self.sounding: dict[tuple[int, int], int] = {}  # (channel, note) -> note-ons sent
        self.stats = Stats()

    def __len__(self) -> int:
        return len(self._heap)

    def add(
        self, time: float, event: MidiEvent, part: str = "", note_id: int = -1, tag: str = ""
    ) -> None:
        heapq.heappush(self._heap, Scheduled(time, next(self._seq), event, part, note_id, tag))

    def add_note(
        self,
        start: float,
        end: float,
        pitch: int,
        velocity: int = 80,
        channel: int = 0,
        part: str = "",
        tag: str = "",
    ) -> int:
        """A note from ``start`` to ``end`` seconds; returns its id (for :meth:`end_note`)."""
        nid = self.start_note(start, pitch, velocity, channel, part, tag)
        if end is not None:
            self.add(max(end, start), note_off(pitch, channel), part, nid, tag)
        return nid

    def start_note(
        self,
        start: float,
        pitch: int,
        velocity: int = 80,
        channel: int = 0,
        part: str = "",
        tag: str = "",
    ) -> int:
        """A note whose end is not known yet (:meth:`end_note` schedules it)."""
        nid = next(self._ids)
        self.add(start, note_on(pitch, velocity, channel), part, nid, tag)
        return nid

    def end_note(
        self, nid: int, time: float, pitch: int, channel: int = 0, part: str = "", tag: str = ""
    ) -> None:
        self.add(time, note_off(pitch, channel), part, nid, tag)

    def next_time(self) -> float | None:
        return self._heap[0].time if self._heap else None

    def due(self, now: float) -> list[Scheduled]:
        """Pop every event due at ``now``, applying the late rule (the dropped ones are not
        returned). The caller sends them and then calls :meth:`mark_sent`."""
        out: list[Scheduled] = []
        while self._heap and self._heap[0].time <= now:
            item = heapq.heappop(self._heap)
            ev = item.event
            if ev.kind == "note_on":
                if now - item.time > self.late_limit:
                    self.stats.dropped += 1
                    self._dropped_ids.add(item.note_id)
                    continue
            elif ev.kind == "note_off" and item.note_id in self._dropped_ids:
                self._dropped_ids.discard(item.note_id)
                continue
            out.append(item)
        return out

    def mark_sent(self, item: Scheduled, sent_at: float) -> None:
        ev = item.event
        self.stats.sent += 1
        key = (ev.channel, ev.note)
        if ev.kind == "note_on":
            late = sent_at - item.time
            self.stats.lateness.append(late)
            if late > 0.001:
                self.stats.shifted += 1
            self.sounding[key] = self.sounding.get(key, 0) + 1
        elif ev.kind == "note_off" and key in self.sounding:
            self.sounding[key] -= 1
            if self.sounding[key] <= 0:
                del self.sounding[key]

    def cancel(
        self, part: str | None = None, tag: str | None = None, after: float = float("-inf")
    ) -> list[Scheduled]:
        """Take out waiting events of ``part`` / ``tag`` (None: any) due after ``after``.
        A cancelled note-on takes its note-off with it; a note-off whose note-on was already
        sent is kept but moved to ``after`` if it was later (the note stops there), so no note
        is left hanging. Returns the events taken out."""
        keep: list[Scheduled] = []
        gone: list[Scheduled] = []
        cancelled_ons: set[int] = set()
        for item in sorted(self._heap):
            match = (part is None or item.part == part) and (tag is None or item.tag == tag)
            if match and item.time > after and item.event.kind == "note_on":
                cancelled_ons.add(item.note_id)
                gone.append(item)
        for item in self._heap:
            match = (part is None or item.part == part) and (tag is None or item.tag == tag)
            if not match or item.time <= after:
                keep.append(item)
            elif item.event.kind == "note_on":
                continue
            elif item.event.kind == "note_off":
                if item.note_id in cancelled_ons:
                    gone.append(item)
                else:
                    item.time = after if after > float("-inf") else item.time
                    keep.append(item)
            else:
                gone.append(item)
        heapq.heapify(keep)
        self._heap = keep
        return gone

    def release_all(self, now: float) -> list[Scheduled]:
        """Note-offs for everything sounding (to send at once when the session ends)."""
        return [
            Scheduled(now, next(self._seq), note_off(note, ch), "")
            for (ch, note), n in sorted(self.sounding.items())
            if n > 0
        ]
