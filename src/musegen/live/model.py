"""``answer`` and ``continue``: a melody token model plays when the player stops.

The model is a token model whose tokenizer is one voice of 16th-note cells (``melody``, as
the shipped ``folk`` has): one token per 16th, so each sampled token is a step of music.

* **Hand-over.** When nothing has sounded for ``pause_beats`` beats, the model takes over:
  ``answer`` at the next bar line and for ``bars`` bars (call and response), ``continue`` at
  the next beat and for as long as the player stays silent (its bars counted as ``far``, so
  the piece never ends). The prompt is read **ahead**: once the player has been silent a
  16th (or half the pause), the prompt of the hand-over that comes if no note follows is
  read on the worker thread, which then waits; a note from the player cancels it. The first
  note comes at least :data:`HANDOVER_MARGIN` seconds after the hand-over, or later where
  :data:`MARGIN_READS` times the longest of the last few prompt reads (the first measured
  when the mode starts) is more than the head start: on a busy machine reading a prompt
  slows down, and the first note must not come late.
* **Prompt.** The last :data:`CONTEXT_BARS` bars before the hand-over on the session's grid,
  quantized to 16ths (the player's notes for ``answer``; for ``continue`` the player's and
  the model's own earlier notes), moved by octaves into the tokenizer's pitch range, as
  ``BOS TS_4/4 LEN_n BAR_n cells… BAR_n-1 cells…`` with the countdown ending where the
  answer must end.
* **Working ahead.** :class:`TokenStreamer` samples on a worker thread with the model's KV
  cache (one token per step after the prompt), at most ``ahead_steps`` 16ths ahead of the
  music, and hands each cell to the session, which schedules its note. A continuation that
  fills the cache starts again from its last :data:`CONTEXT_BARS` bars.
* **Barge-in.** A note from the player stops the model: its notes not yet sent are taken off
  the scheduler and the one sounding ends there.
"""

from __future__ import annotations

import queue
import threading
import time
from collections import deque
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from musegen.errors import MusegenError
from musegen.live.modes import Mode

if TYPE_CHECKING:
    from musegen.live.session import LiveSession

PART = "model"
CHANNEL = 1
CONTEXT_BARS = 8
HANDOVER_MARGIN = 0.25  # seconds between noticing the pause and the model's first note
MARGIN_READS = 2.0  # ... or this many times the longest recent prompt read, less the head start
PROMPT_CHUNK = 64  # tokens read at a time (a prompt read ahead can be stopped between chunks)
CACHE_TOKENS = 1024  # a continuation re-reads its last bars when its cache holds this many
_END = object()


@dataclass
class Cells:
    """One voice on the 16th grid from ``first_step``: token ids (REST, HOLD or a pitch)."""

    first_step: int
    ids: np.ndarray


def melody_cells(
    notes: list[tuple[float, float, int]], first_step: int, last_step: int, tokenizer: Any
) -> Cells:
    """Cells ``first_step .. last_step - 1`` of notes ``(start_step, end_step, pitch)``: the
    latest note to start wins a step; pitches moved by octaves into the tokenizer's range."""
    n = max(last_step - first_step, 0)
    pitch = np.full(n, -1, dtype=np.int64)
    onset = np.zeros(n, dtype=bool)
    lo, hi = tokenizer.config.ranges[0]
    for start, end, p in sorted(notes):
        s = round(start) - first_step
        e = max(round(end) - first_step, s + 1)
        if e <= 0 or s >= n:
            continue
        while p < lo:
            p += 12
        while p > hi:
            p -= 12
        pitch[max(s, 0) : min(e, n)] = p
        if s >= 0:
            onset[s] = True
    ids = np.full(n, tokenizer.rest_id, dtype=np.int64)
    ids[pitch >= 0] = tokenizer.hold_id
    before = np.concatenate([[-1], pitch[:-1]])
    starts = (pitch >= 0) & (onset | (pitch != before))
    ids[starts] = pitch[starts] + tokenizer.pitch_offset
    return Cells(first_step, ids)


def prompt_ids(tokenizer: Any, cells: Cells, bar_steps: int, total_bars: int | None) -> np.ndarray:
    """``BOS TS LEN`` and the cells cut into bars (``cells.first_step`` is on a bar line);
    the countdown ends ``total_bars`` bars after the first (None: ``far`` throughout)."""
    from musegen.tokenizers.base import BOS

    ts = f"{bar_steps // 4}/4"
    if ts not in tokenizer.config.time_signatures:
        raise MusegenError(f"the model's tokenizer has no time signature {ts}")
    far = tokenizer.config.max_bars + 1
    out = [BOS, tokenizer.vocab.offset("ts") + tokenizer.config.time_signatures.index(ts)]
    remaining = far if total_bars is None else min(total_bars, far)
    out.append(tokenizer.vocab.offset("len") + remaining - 1)
    for b in range(0, len(cells.ids), bar_steps):
        value = far if total_bars is None else min(total_bars - b // bar_steps, far)
        out.append(tokenizer.vocab.offset("bar") + value - 1)
        out.extend(int(x) for x in cells.ids[b : b + bar_steps])
    return np.array(out, dtype=np.int64)


class TokenStreamer:
    """Samples cells on a worker thread, ahead of the music (see the module docstring).

    ``playhead`` (a step, set by the session) paces it: it never samples the cell of a step
    more than ``ahead`` steps past the playhead. Cells come out of :attr:`cells` as
    ``(step, token)``; :data:`_END` when the piece ends or the streamer is stopped.
    """

    def __init__(
        self, model: Any, tokenizer: Any, temperature: float, top_p: float, seed: int
    ) -> None:
        self.model, self.tokenizer = model, tokenizer
        self.temperature, self.top_p = temperature, top_p
        self.rng = np.random.default_rng(seed)
        self.cells: queue.Queue[Any] = queue.Queue()
        self.playhead = 0.0  # the music's position in steps (set by the session)
        self.step_seconds = 0.125  # and the length of a step now
        self.ahead = 16
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.error: BaseException | None = None
        self.tokens = 0
        self.next_step = 0  # the step of the next cell to sample
        self.restarts = 0  # times a continuation re-read its last bars (cache full)
        self.reads: deque[float] = deque(maxlen=4)  # seconds the last prompt reads took
        self.held = False  # the prompt is read and the thread waits for go
        self._go = threading.Event()

    def start(
        self,
        prompt: np.ndarray,
        first_step: int,
        endless: bool,
        history: Cells,
        bar_steps: int,
        go: bool = True,
    ) -> None:
        """Read ``prompt`` on a new thread, then (once :meth:`go` is called, at once with
        ``go``) sample cells from step ``first_step`` on."""
        self.stop()
        self._stop = threading.Event()
        self._go = threading.Event()
        if go:
            self._go.set()
        self.cells = queue.Queue()
        self.next_step = first_step
        self.held = False
        args = (prompt, first_step, endless, history, bar_steps, self._stop, self.cells)
        self._thread = threading.Thread(
            target=self._run, args=args, daemon=True, name="musegen-live-model"
        )
        self._thread.start()

    def go(self) -> None:
        """Start sampling (after a prompt read ahead with ``start(..., go=False)``)."""
        self.held = False
        self._go.set()

    def stop(self, wait: bool = True) -> None:
        """Stop sampling; ``wait``: until the thread has ended (else it ends by itself at its
        next token, and its cells go to a queue no one reads)."""
        self._stop.set()
        if wait and self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def _run(self, prompt, first_step, endless, history, bar_steps, stop, out) -> None:  # type: ignore[no-untyped-def]
        _normal_priority()
        try:
            self._sample(prompt, first_step, endless, history, bar_steps, stop, out)
        except BaseException as e:  # handed to the session, which reports it
            self.error = e
        finally:
            out.put(_END)

    def _sample(self, prompt, first_step, endless, history, bar_steps, stop, out) -> None:  # type: ignore[no-untyped-def]
        import torch

        from musegen.models.base import LanguageModel, last_logits
        from musegen.sampling.filters import apply_filters, build_filters, sample
        from musegen.sampling.generate import decoding_threads
        from musegen.tokenizers.base import EOS

        tok = self.tokenizer
        model = self.model
        filters = build_filters(self.temperature, 0, self.top_p, 1.0)
        bar_far = tok.vocab.offset("bar") + tok.config.max_bars  # BAR_far
        bar_lo, bar_hi = tok.vocab.span("bar")
        advance = getattr(model, "next_logits", None) or (
            lambda t, c: LanguageModel.next_logits(model, t, c)
        )
        device = next(model.parameters()).device
        made = list(history.ids)  # every cell so far (history, then sampled), for a restart
        made_first = history.first_step
        step = first_step
        go = self._go
        with torch.no_grad(), decoding_threads(model, 1, device):
            while not stop.is_set():
                grammar = tok.grammar().feed(prompt)
                cache = model.init_cache(1, len(prompt) + CACHE_TOKENS + bar_steps + 4)
                t0 = time.perf_counter()
                for i in range(0, len(prompt), PROMPT_CHUNK):  # a stop is heard between chunks
                    if stop.is_set():
                        return
                    chunk = torch.as_tensor(prompt[None, i : i + PROMPT_CHUNK], device=device)
                    logits, cache = model(chunk, cache)
                self.reads.append(time.perf_counter() - t0)
                last = last_logits(logits)
                ids = list(prompt)
                self.held = not go.is_set()
                while not go.wait(0.05):  # a prompt read ahead waits for the hand-over
                    if stop.is_set():
                        return
                self.held = False
                while not stop.is_set():
                    while (early := step - self.playhead - self.ahead) > 0:
                        # sleep until the music catches up (few wake-ups: each takes the GIL)
                        if stop.wait(min(max(early * self.step_seconds, 0.001), 0.05)):
                            return
                    if stop.is_set():
                        return
                    mask = grammar.mask()
                    if endless:  # never count down to an end
                        mask = mask.copy()
                        mask[EOS] = False
                        mask[bar_lo:bar_hi] &= np.arange(bar_lo, bar_hi) == bar_far
                    row = np.where(mask[None], last, np.float32(-np.inf))
                    row = apply_filters(row, np.array(ids)[None], filters)
                    token = int(sample(row, self.rng)[0])
                    grammar.step(token)
                    ids.append(token)
                    self.tokens += 1
                    if token == EOS:
                        return
                    if token >= tok.rest_id:
                        out.put((step, token))
                        made.append(token)
                        step += 1
                        if not stop.is_set():
                            self.next_step = step
                    full = (
                        len(ids) >= len(prompt) + CACHE_TOKENS
                        and (step - made_first) % bar_steps == 0
                    )
                    if endless and full:  # cache full at a bar line: start again from the last bars
                        keep = CONTEXT_BARS * bar_steps
                        made_first += max(len(made) - keep, 0)
                        made = made[-keep:]
                        prompt = prompt_ids(tok, Cells(made_first, np.array(made)), bar_steps, None)
                        self.restarts += 1
                        break
                    last, cache = advance(np.array([token]), cache)


def _normal_priority() -> None:
    """The model's thread at normal priority even when the session loop that started it runs
    at real-time priority (``musegen live --realtime``; threads inherit the policy)."""
    import os

    if hasattr(os, "sched_setscheduler"):
        try:
            if os.sched_getscheduler(0) != os.SCHED_OTHER:
                os.sched_setscheduler(0, os.SCHED_OTHER, os.sched_param(0))
        except OSError:
            pass


def load_melody_model(ref: str | None) -> tuple[Any, Any, dict[str, Any]]:
    """Model, tokenizer and sampling defaults of a melody token model (default ``folk``)."""
    from musegen.sampling.generators import TokenGenerator, load_generator, sampling_defaults

    gen = load_generator(ref or "folk")
    tok = getattr(gen, "tokenizer", None)
    if not isinstance(gen, TokenGenerator) or getattr(tok, "name", "") != "melody":
        raise MusegenError(
            f"--model {ref}: answer and continue need a token model with the 'melody' tokenizer "
            "(one voice of 16th-note cells), such as folk"
        )
    return gen.model, tok, sampling_defaults(gen.meta)


class ModelMode(Mode):
    """``answer`` (``endless`` False) and ``continue`` (True): see the module docstring."""

    def __init__(
        self, session: LiveSession, endless: bool, model: Any = None, tokenizer: Any = None
    ) -> None:
        super().__init__(session)
        cfg = session.config
        self.endless = endless
        self.name = "continue" if endless else "answer"
        if model is None:
            model, tokenizer, defaults = load_melody_model(cfg.model)
            temperature = cfg.temperature if cfg.temperature != 1.0 else defaults["temperature"]
            top_p = defaults["top_p"]
        else:
            temperature, top_p = cfg.temperature, 1.0
        if cfg.beats_per_bar != 4:
            raise MusegenError("answer and continue play in 4/4 (--beats-per-bar 4)")
        self.tokenizer = tokenizer
        self.streamer = TokenStreamer(model, tokenizer, temperature, top_p, cfg.seed)
        self.streamer.ahead = cfg.ahead_steps
        self.phrase_start: float | None = None  # answer: where the player's phrase began
        self.last_off: float | None = None
        self.playing = False
        self.prepared = False  # a hand-over's prompt is being read ahead
        self.open: tuple[int, int, float] | None = None  # (pitch, note id, start time)
        self.model_notes: list[tuple[float, float, int]] = []  # (start, end, pitch) in seconds
        self.answers = 0
        self.slack: list[float] = []  # seconds each cell was ready before its time
        self._last_step = 0
        self._warm_up(model)

    def _warm_up(self, model: Any) -> None:
        """Read a prompt as long as the longest there will be, once: the first answer does
        not pay for loading kernels, and the hand-over margin starts from its time."""
        import torch

        n = 3 + CONTEXT_BARS * (self.grid.bar_steps + 1)
        ids = torch.full((1, n), self.tokenizer.rest_id, dtype=torch.int64)
        with torch.no_grad():
            for _ in range(2):  # the first call also picks and loads kernels: time the second
                cache = model.init_cache(1, n)
                t0 = time.perf_counter()
                model(ids, cache)
        self.streamer.reads.append(time.perf_counter() - t0)

    def margin(self) -> float:
        """Seconds the model needs from the start of a prompt read to its first note (see
        the module docstring)."""
        return max(HANDOVER_MARGIN, MARGIN_READS * max(self.streamer.reads, default=0.0))

    # ------------------------------------------------------------------ the player
    def on_note_on(self, pitch: int, velocity: int, t: float) -> None:
        if self.playing:
            self._barge_in(t)
        elif self.prepared:  # the prompt read ahead is not needed: the player goes on
            self.streamer.stop(wait=False)
            self.prepared = False
        if self.phrase_start is None:
            self.phrase_start = t

    def on_note_off(self, pitch: int, t: float) -> None:
        self.last_off = t

    def _barge_in(self, t: float) -> None:
        self.streamer.stop(wait=False)  # the loop does not wait for the model's thread
        self.scheduler.cancel(part=PART, after=t)
        self._end_open(t)
        self.playing = False
        if not self.endless:
            self.phrase_start = None

    # ------------------------------------------------------------------ hand-over
    def update(self, t: float) -> None:
        g = self.grid
        self.streamer.playhead = g.step_at(t)
        self.streamer.step_seconds = g.step_seconds
        if self.playing:
            self._drain(t)
            return
        if self.phrase_start is None or self.session.sounding or self.last_off is None:
            return
        quiet = t - self.last_off
        pause = self.session.config.pause_beats * g.beat_seconds
        if not self.prepared and quiet >= min(g.step_seconds, pause / 2):
            self._prepare(self.last_off + pause, t)
        if self.prepared and quiet >= pause:
            self.streamer.go()
            self.prepared = False
            self.playing = True
            self.answers += 1

    def _prepare(self, handover: float, now: float) -> None:
        """Read the prompt of a hand-over at ``handover`` ahead, from ``now`` (the player has
        been silent a 16th: if no note comes before ``handover``, this is the prompt)."""
        g = self.grid
        margin = max(HANDOVER_MARGIN, self.margin() - (handover - now))
        earliest = g.step_at(handover + margin)
        if self.endless:
            start = int(np.ceil(earliest / 4 - 1e-9)) * 4
        else:
            start = g.next_bar_step(handover + margin)
        first = max(start - CONTEXT_BARS * g.bar_steps, 0) // g.bar_steps * g.bar_steps
        if self.endless:  # everything so far: the player's notes and the model's own
            notes = [(g.step_at(a), g.step_at(b), p) for a, b, p in self.model_notes]
            chosen = self.session.played
        else:  # the player's phrase
            notes = []
            chosen = [n for n in self.session.played if n.start >= (self.phrase_start or 0.0)]
        notes += [
            (g.step_at(n.start), g.step_at(now if n.end is None else n.end), n.pitch)
            for n in chosen
        ]
        cells = melody_cells(notes, first, start, self.tokenizer)
        total = (
            None if self.endless else -(-(start - first) // g.bar_steps) + self.session.config.bars
        )
        prompt = prompt_ids(self.tokenizer, cells, g.bar_steps, total)
        self.streamer.start(prompt, start, self.endless, cells, g.bar_steps, go=False)
        self.prepared = True

    # ------------------------------------------------------------------ the model's notes
    def _drain(self, t: float) -> None:
        g = self.grid
        while True:
            try:
                item = self.streamer.cells.get_nowait()
            except queue.Empty:
                return
            if item is _END:
                if self.streamer.error is not None:
                    raise MusegenError(
                        f"the model stopped: {self.streamer.error}"
                    ) from self.streamer.error
                self._end_open(g.time_of_step(self._last_step + 1) if self.open else t)
                self.playing = False
                self.phrase_start = None if not self.endless else self.phrase_start
                return
            step, token = item
            self._last_step = step
            when = g.time_of_step(step)
            self.slack.append(when - t)
            if token == self.tokenizer.hold_id:
                continue
            self._end_open(when)
            if token != self.tokenizer.rest_id:
                pitch = token - self.tokenizer.pitch_offset
                nid = self.scheduler.start_note(when, pitch, self.velocity, CHANNEL, PART)
                self.open = (pitch, nid, when)

    def _end_open(self, t: float) -> None:
        if self.open is not None:
            pitch, nid, start = self.open
            self.scheduler.end_note(nid, max(t, start), pitch, CHANNEL, PART)
            self.model_notes.append((start, max(t, start), pitch))
            self.open = None

    def close(self) -> None:
        self.streamer.stop()
        if self.open is not None:
            self._end_open(self.session.last_input)

    def channels(self) -> list[int]:
        return [CHANNEL]

    def track_names(self) -> dict[tuple[str, int], str]:
        return {(PART, CHANNEL): "musegen"}

    def stats(self) -> dict[str, Any]:
        out: dict[str, Any] = {"handovers": self.answers, "tokens": self.streamer.tokens}
        if self.slack:
            out["ahead_min_ms"] = round(1000 * min(self.slack), 1)
            out["ahead_median_ms"] = round(1000 * float(np.median(self.slack)), 1)
        return out
