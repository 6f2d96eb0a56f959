"""Markov chains: counts equal a naive count, back-off works, seeds reproduce, and the
statistics of samples approach the corpus's as the order grows."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from musegen.compose.markov import REST, Chain, MarkovModel, melody_events
from musegen.data.refs import iter_scores
from musegen.errors import MusegenError
from musegen.score import KeySignature, Note, Score, TimeSignature, Track


@pytest.fixture(scope="module")
def folk() -> list[Score]:
    """200 Nottingham tunes (vendored with musegen, so always here)."""
    return list(iter_scores("source:nottingham", "train", max_pieces=200))


@pytest.fixture(scope="module")
def models(folk):
    return {n: MarkovModel.train(folk, order=n) for n in (1, 2, 3)}


def naive_counts(seqs, order, alphabet):
    """(history tuple, next) -> count, with BOS padding, by plain Python."""
    c = Counter()
    for s in seqs:
        padded = [alphabet] * order + list(s)
        for i in range(order, len(padded)):
            c[(tuple(padded[i - order : i]), padded[i])] += 1
    return c


def test_vectorised_counts_equal_naive_counts():
    rng = np.random.default_rng(0)
    seqs = [rng.integers(0, 5, rng.integers(1, 30)) for _ in range(40)]
    chain = Chain.fit(seqs, alphabet=5, order=3)
    top = chain.levels[0]
    got = Counter()
    for r, key in enumerate(top.keys):
        hist, k = [], int(key)
        for _ in range(3):
            hist.append(k % 6)
            k //= 6
        for j in range(top.ptr[r], top.ptr[r + 1]):
            got[(tuple(reversed(hist)), int(top.targets[j]))] = int(top.counts[j])
    assert got == naive_counts(seqs, 3, 5)
    # every level's counts add up to the number of symbols
    assert {int(lv.counts.sum()) for lv in chain.levels} == {sum(map(len, seqs))}


def test_back_off_reaches_unseen_contexts():
    chain = Chain.fit([np.array([0, 1, 2, 0, 1, 2])], alphabet=4, order=2)
    unseen = np.array([[3, 3], [2, 3], [0, 1]])
    out = chain.draw(unseen, None, np.array([0.1, 0.5, 0.9]))
    assert out[2] == 2  # seen context (0, 1) -> 2 always
    assert set(out.tolist()) <= {0, 1, 2}


def test_seed_reproduces_and_melody_does_not_depend_on_batch_size(models):
    m = models[2]
    a = m.sample(5, 4, seed=7)
    b = m.sample(1, 4, seed=7)
    c = m.sample(5, 4, seed=8)
    assert np.array_equal(a.events(0)[0], b.events(0)[0])
    assert np.array_equal(a.events(0)[1], b.events(0)[1])
    assert any(not np.array_equal(a.events(i)[0], c.events(i)[0]) for i in range(5))
    for i in range(5):  # every melody fills its bars exactly
        assert a.events(i)[1].sum() == 4 * 16


def test_json_round_trip_samples_the_same(models, tmp_path):
    m = models[3]
    path = m.save(tmp_path / "m.json")
    again = MarkovModel.load(path)
    x, y = m.sample(3, 8, seed=1), again.sample(3, 8, seed=1)
    assert np.array_equal(x.pitch, y.pitch) and np.array_equal(x.length, y.length)
    with pytest.raises(MusegenError, match="cannot read Markov model"):
        MarkovModel.load(tmp_path / "missing.json")


def _interval_ngrams(melodies, n):
    c = Counter()
    for p in melodies:
        iv = np.diff(p[p != REST])
        for i in range(len(iv) - n + 1):
            c[tuple(iv[i : i + n])] += 1
    return c


def _kl(p: Counter, q: Counter, eps: float = 1e-4) -> float:
    keys = sorted(set(p) | set(q))
    a = np.array([p[k] for k in keys], float)
    b = np.array([q[k] for k in keys], float)
    a /= a.sum()
    b = (b + eps * b.sum()) / (b.sum() * (1 + eps * len(keys)))
    m = a > 0
    return float((a[m] * np.log(a[m] / b[m])).sum())


def test_statistics_approach_the_corpus_as_order_grows(folk, models):
    corpus = [e.pitch for e in (melody_events(s) for s in folk) if e is not None]
    ref = _interval_ngrams(corpus, 2)  # pairs of successive intervals (3-note shapes)
    kl = []
    for n in (1, 2, 3):
        s = models[n].sample(300, 8, seed=0)
        kl.append(_kl(ref, _interval_ngrams([s.events(i)[0] for i in range(len(s))], 2)))
    assert kl[0] > kl[1] > kl[2], kl


def test_chords_and_output_score(folk):
    m = MarkovModel.train(folk[:60], order=2, chords=True)
    batch = m.sample(2, 4, seed=3, temperature=0.8)
    score = batch.score(0, key=(7, False))
    assert [t.name for t in score.tracks] == ["melody", "chords"]
    assert score.key_signatures[0].key == 1  # G major
    assert score.tracks[1].end <= 4 * 4 * score.tpq


def test_bad_settings_are_clear_errors(models):
    with pytest.raises(MusegenError, match="order"):
        MarkovModel.train([], order=5)
    with pytest.raises(MusegenError, match="no melodies"):
        MarkovModel.train([Score()], order=1)
    with pytest.raises(MusegenError, match="temperature"):
        models[1].sample(1, 1, temperature=0)


def test_events_of_a_melody_with_a_rest():
    notes = [Note(60, 0, 480), Note(62, 960, 480), Note(64, 1440, 960)]
    score = Score(
        tracks=[Track.from_notes(notes)],
        time_signatures=[TimeSignature(0, 3, 4)],
        key_signatures=[KeySignature(0, 1)],  # G major: moved up a fourth to C
    )
    ev = melody_events(score)
    assert ev is not None
    assert ev.pitch.tolist() == [65, REST, 67, 69]
    assert ev.length.tolist() == [4, 4, 4, 8]
    assert ev.position.tolist() == [0, 4, 8, 0]  # 3/4 bar = 12 sixteenths


def test_trains_from_folder_file_and_prepared_dataset(folk, tmp_path):
    from musegen.compose.markov import train_markov
    from musegen.data.dataset import prepare_dataset
    from musegen.data.sources import get_source
    from musegen.io import save
    from musegen.tokenizers import get_tokenizer

    folder = tmp_path / "tunes"
    for i, s in enumerate(folk[:6]):
        save(s, folder / f"t{i}.mid")
    by_folder = train_markov([str(folder)], order=2)
    by_file = train_markov([str(folder / "t0.mid")], order=1)
    prepare_dataset(
        get_source("folder", root=folder),
        get_tokenizer("remi"),
        tmp_path / "ds",
        workers=1,
        progress=False,
    )
    by_dataset = train_markov([str(tmp_path / "ds")], order=2)
    assert by_folder.info["pieces"] == 6 and by_file.info["pieces"] == 1
    assert 1 <= by_dataset.info["pieces"] <= 6
    with pytest.raises(MusegenError, match="not a source"):
        train_markov([str(tmp_path / "nowhere")])
