"""answer and continue with a tiny random melody model, on a fake clock: the model's notes
come after the pause, on the grid, in the tokenizer's range, for the asked number of bars;
a note from the player stops it. The worker thread is waited for (in real time) before each
fake tick, so nothing depends on how fast the machine is."""

from __future__ import annotations

import time

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from musegen.live.clock import FakeClock  # noqa: E402
from musegen.live.model import PART, Cells, ModelMode, melody_cells, prompt_ids  # noqa: E402
from musegen.live.ports import note_off, note_on  # noqa: E402
from musegen.live.session import LiveConfig, LiveSession  # noqa: E402
from musegen.models import build_model  # noqa: E402
from musegen.tokenizers import get_tokenizer  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_torch_thread")
STEP = 0.125  # 16ths at 120 bpm
PHRASE = [67, 69, 71, 72, 74, 72, 71, 69, 67, 0, 0, 0, 0, 0, 0, 0]  # one bar, 0 = rest


@pytest.fixture(scope="module")
def tiny():
    tok = get_tokenizer("melody")
    torch.manual_seed(0)
    model = build_model("transformer", vocab_size=len(tok), n_layer=1, d_model=32, n_head=2)
    model.eval()
    return model, tok


def _session(tiny, mode: str, **options) -> LiveSession:
    model, tok = tiny
    config = LiveConfig(mode=mode, bpm=120, seed=3, **options)
    return LiveSession(
        config, mode_factory=lambda name, s: ModelMode(s, name == "continue", model, tok)
    )


def _wait_for_model(mode: ModelMode) -> None:
    """Real-time wait until the worker is as far ahead as it may go, or waits for its
    hand-over with the prompt read, or has ended."""
    deadline = time.monotonic() + 10
    s = mode.streamer
    while (
        s.running
        and not s.held
        and s.next_step <= s.playhead + s.ahead
        and time.monotonic() < deadline
    ):
        time.sleep(0.001)


def _run(session: LiveSession, events, end: float, barge=None):
    clock = FakeClock()
    out = []
    events = sorted(events, key=lambda e: e[0])
    k = 0
    while clock.now() <= end:
        t = clock.now()
        while k < len(events) and events[k][0] <= t + 1e-12:
            session.feed(events[k][1], t)
            k += 1
        session.mode.streamer.playhead = session.grid.step_at(t)
        _wait_for_model(session.mode)
        session.update(t)
        for item in session.due(t):
            session.sent(item, t)
            out.append((item.time, item.event))
        clock.advance(0.005)
    session.mode.close()
    return out


def _phrase(start: float = 0.0):
    events = []
    for i, p in enumerate(PHRASE):
        if p:
            events += [(start + i * STEP, note_on(p, 90)), (start + (i + 0.9) * STEP, note_off(p))]
    return events


def test_prompt_of_the_players_phrase_is_a_valid_sequence(tiny) -> None:
    _, tok = tiny
    notes = [(0.0, 1.0, 60), (1.0, 3.0, 30), (3.0, 4.0, 110)]  # out of range: moved by octaves
    cells = melody_cells(notes, 0, 16, tok)
    assert cells.ids[0] == tok.pitch_offset + 60 and cells.ids[2] == tok.hold_id
    lo, hi = tok.config.ranges[0]
    pitches = cells.ids[cells.ids >= tok.pitch_offset] - tok.pitch_offset
    assert all(lo <= p <= hi for p in pitches)
    assert all(cells.ids[4:] == tok.rest_id)
    for total in (3, None):
        ids = prompt_ids(tok, Cells(0, np.concatenate([cells.ids, cells.ids[:4]])), 16, total)
        tok.grammar().feed(ids)  # raises if the grammar does not take it


def test_answer_comes_after_the_pause_on_the_bar_line_for_the_asked_bars(tiny) -> None:
    session = _session(tiny, "answer", bars=2)
    out = _run(session, _phrase(), end=6.0)
    mode = session.mode
    assert mode.answers == 1 and not mode.playing
    ons = [(t, e) for t, e in out if e.kind == "note_on"]
    assert ons, "the model played nothing"
    # the phrase ends at 1.0 s (its last note at 8 16ths = 1.0 s); a beat of silence and
    # the margin put the answer on the next bar line, 2.0 s, for two bars (to 6.0 s)
    assert min(t for t, _ in ons) >= 2.0 - 1e-9
    assert max(t for t, _ in ons) < 6.0
    steps = [t / STEP for t, _ in ons]
    assert all(abs(s - round(s)) < 1e-6 for s in steps)  # on the 16th grid
    _, tok = tiny
    lo, hi = tok.config.ranges[0]
    assert all(lo <= e.note <= hi and e.channel == 1 for _, e in ons)
    assert session.scheduler.stats.dropped == 0
    score = session.recorder.score()
    assert [t.name for t in score.tracks] == ["player", "musegen"]


def test_player_barges_in_and_continue_goes_on_until_then(tiny) -> None:
    session = _session(tiny, "continue")
    barge = 5.0
    events = [*_phrase(), (barge, note_on(60, 90)), (barge + 0.1, note_off(60))]
    out = _run(session, events, end=5.5)
    mode = session.mode
    ons = [t for t, e in out if e.kind == "note_on"]
    assert ons and min(ons) >= 1.5 - 1e-9  # the next beat after the pause and margin
    assert max(ons) <= barge + 1e-9  # nothing of the model's after the player comes back
    assert mode.streamer.tokens > 16
    assert not [i for i in session.scheduler._heap if i.part == PART and i.event.kind == "note_on"]
    assert not session.scheduler.sounding or all(ch != 1 for ch, _ in session.scheduler.sounding)


def test_continue_reads_its_last_bars_again_when_the_cache_is_full(tiny, monkeypatch) -> None:
    import musegen.live.model as live_model

    monkeypatch.setattr(live_model, "CACHE_TOKENS", 20)  # a restart about every 2 bars
    session = _session(tiny, "continue")
    out = _run(session, _phrase(), end=7.5)
    assert session.mode.streamer.error is None and session.mode.streamer.restarts >= 1
    ons = [t for t, e in out if e.kind == "note_on"]
    assert session.mode.streamer.next_step >= 7.0 / STEP  # it kept going past the restarts
    assert ons and session.scheduler.stats.dropped == 0


def test_prompt_read_ahead_in_a_short_gap_is_dropped_when_the_player_goes_on(tiny) -> None:
    session = _session(tiny, "answer", bars=1)
    mode = session.mode
    events = _phrase() + [(e[0] + 1.5, e[1]) for e in _phrase()]  # a gap of 7/16 + 0.5 s
    started = []
    original = mode.streamer.start
    mode.streamer.start = lambda *a, **k: (started.append(k.get("go")), original(*a, **k))
    out = _run(session, events, end=5.0)
    assert started[0] is False  # read ahead in the gap, then dropped ...
    assert mode.answers == 1  # ... and one answer, after the second phrase
    ons = [t for t, e in out if e.kind == "note_on"]
    assert ons and min(ons) >= 4.0 - 1e-9
