"""Voice-leading energies agree with the checker; smoothing and repair passes on tiny grids."""

from __future__ import annotations

import numpy as np
import pytest

from musegen.errors import MusegenError
from musegen.metrics.voice_leading import check_voice_leading
from musegen.sampling.rules_energy import (
    RuleContext,
    RuleWeights,
    cell_energy,
    parallel_counts,
    parallel_errors,
    repair_parallels,
    smooth_fragments,
    window_energy,
)

CANDIDATES = np.arange(40, 85)
MOTION_KINDS = {
    "parallel": ("parallel_fifths", "parallel_octaves"),
    "hidden": ("hidden_fifths", "hidden_octaves"),
    "overlap": ("voice_overlap",),
    "leap": ("large_leap",),
    "augmented": ("augmented_interval",),
}


def random_grid(rng: np.random.Generator, steps: int = 12) -> np.ndarray:
    """Four voices around a close C-major voicing, some cells held over."""
    grid = np.array([72, 64, 57, 48]) + rng.integers(-7, 8, size=(steps, 4))
    return np.repeat(grid, rng.integers(1, 3, size=steps), axis=0)[:steps]


def parallels(grid: np.ndarray) -> int:
    counts = check_voice_leading(grid).counts()
    return counts["parallel_fifths"] + counts["parallel_octaves"]


@pytest.mark.parametrize("trial", range(4))
def test_motion_energy_changes_as_the_checker_counts(trial: int) -> None:
    """Changing one cell changes the energy of a motion rule exactly as the checker's count
    of that rule changes (two paths to one answer)."""
    rng = np.random.default_rng(trial)
    grid = random_grid(rng)
    key = (int(rng.integers(12)), bool(rng.integers(2)))
    ctx = RuleContext(key=key)
    t, v = int(rng.integers(len(grid))), int(rng.integers(4))
    for name, kinds in MOTION_KINDS.items():
        weights = RuleWeights(**{name: 1.0})
        energy = cell_energy(grid[None], CANDIDATES, weights, ctx)[0, t, v]
        assert np.array_equal(energy, window_energy(grid, t, CANDIDATES, weights, ctx)[v])
        counts = []
        for c in CANDIDATES:
            changed = grid.copy()
            changed[t, v] = c
            found = check_voice_leading(changed, key=key).counts()
            counts.append(sum(found[k] for k in kinds))
        assert np.array_equal(energy - energy[0], np.array(counts) - counts[0]), name


def test_parallel_errors_are_the_checkers() -> None:
    rng = np.random.default_rng(5)
    for _ in range(10):
        grid = random_grid(rng, 16)
        assert len(parallel_errors(grid)) == parallels(grid)
    moving = np.array([[67, 64, 60, 48], [69, 65, 62, 50]])  # all up a step
    assert parallel_errors(moving) == [(1, 0, 2), (1, 0, 3), (1, 2, 3)]  # 5ths, 12ths, 8ves


def test_cell_rules_and_articulation() -> None:
    grid = np.array([[72, 64, 55, 48]] * 8)
    cand = np.array([50, 60, 64, 80])
    crossing = cell_energy(grid[None], cand, RuleWeights(crossing=1))[0]
    assert crossing[0, 1].tolist() == [1, 0, 0, 1]  # alto: below the tenor (50), above S (80)
    spacing = cell_energy(grid[None], cand, RuleWeights(spacing=1))[0]
    assert spacing[0, 1].tolist() == [1, 0, 0, 1]  # 22 below the soprano / 25 above the tenor
    ranges = cell_energy(grid[None], cand, RuleWeights(range=1))[0]
    assert ranges[0, 0].tolist() == [1, 0, 0, 1]  # soprano C4-G5
    shifted = RuleContext().shifted(-12)  # the grid sits an octave below the checked pitches
    assert cell_energy(grid[None], cand, RuleWeights(range=1), shifted)[0, 0, 0].tolist() == [
        0,
        0,
        0,
        1,
    ]
    w = RuleWeights(change_beat=1, change_8th=2, change_16th=4)
    art = cell_energy(grid[None], np.array([64, 65]), w)[0, :, 1]
    # holding (64) costs nothing; 65 changes into the cell and back out of it
    assert art[:, 0].tolist() == [0] * 8
    assert art[1:5, 1].tolist() == [4 + 2, 2 + 4, 4 + 1, 1 + 4]
    assert art[0, 1] == 4 and art[7, 1] == 4  # no change into step 0 / out of the last step
    with pytest.raises(MusegenError):
        RuleWeights(parallel=-1)


def test_parallel_counts_split_into_and_out_of_the_cell() -> None:
    grid = np.array([[72, 64, 55, 48], [74, 65, 57, 50], [76, 67, 59, 52]])
    p_in, p_out = parallel_counts(grid[None], np.array([50, 49]))
    # bass 48 -> 50 -> 52 under soprano 72 -> 74 -> 76 and tenor 55 -> 57 -> 59: octaves and
    # fifths into and out of step 1; C#3 (49) makes neither
    assert (p_in[0, 1, 3].tolist(), p_out[0, 1, 3].tolist()) == ([2, 0], [2, 0])


def test_repair_leaves_no_parallel_on_a_free_cell() -> None:
    rng = np.random.default_rng(1)
    for rounds in (8, 0):  # model-free repair, and the hold-only sweep
        for _ in range(5):
            soprano = np.clip(72 + np.cumsum(rng.integers(-2, 3, size=24)), 64, 80)
            grid = np.stack([soprano, soprano - 12, soprano - 19, soprano - 24], 1)
            free = np.zeros_like(grid, dtype=bool)
            free[:, 1:] = True
            assert parallels(grid) > 0
            fixed = repair_parallels(grid, free, CANDIDATES, max_rounds=rounds)
            assert parallels(fixed) == 0
            assert np.array_equal(fixed[:, 0], soprano)
            assert np.isin(fixed[:, 1:], CANDIDATES).all()


def test_repair_keeps_to_the_allowed_pitches_and_the_preference() -> None:
    soprano = np.array([72, 74, 76, 77, 79, 77, 76, 74])
    grid = np.stack([soprano, soprano - 12, soprano - 17, soprano - 24], 1)
    free = np.zeros_like(grid, dtype=bool)
    free[:, 1:] = True
    allowed = np.ones((4, len(CANDIDATES)), bool)
    allowed[3] = CANDIDATES < 52  # the bass may only hold or go below E3

    def prefer_high(_grid: np.ndarray, cells: list[tuple[int, int]]) -> np.ndarray:
        return np.tile(CANDIDATES.astype(float), (len(cells), 1))

    fixed = repair_parallels(grid, free, CANDIDATES, prefer_high, allowed)
    assert parallels(fixed) == 0
    moved = fixed[:, 3] != grid[:, 3]
    assert ((fixed[moved, 3] < 52) | (fixed[moved, 3] == np.roll(fixed[:, 3], 1)[moved])).all()
    few = np.arange(40, 46)  # no candidate near the inner voices: only holding fixes them
    assert parallels(repair_parallels(grid, free, few)) == 0


def test_smoothing_merges_fragments_and_keeps_ornaments() -> None:
    alto = [64] * 4 + [64, 65, 64, 64] + [64, 64, 65, 67] + [67] * 4
    grid = np.array([[72, a, 55, 48] for a in alto])  # beat 2: a neighbour 16th on its 2nd
    free = np.zeros_like(grid, dtype=bool)  # 16th; beat 3: a passing 16th in its 2nd half
    free[:, 1:] = True
    out = smooth_fragments(grid, free, [1, 2], RuleWeights(parallel=1), keep_ornaments=True)
    assert out[:, 1].tolist() == [64] * 10 + [65] + [67] * 5
    every = smooth_fragments(grid, free, [1, 2], RuleWeights(parallel=1))
    assert every[:, 1].tolist() == [64] * 11 + [67] * 5  # a tie holds the note before
    assert np.array_equal(out[:, [0, 2, 3]], grid[:, [0, 2, 3]])
    given = smooth_fragments(grid, np.zeros_like(free), [1, 2], RuleWeights())
    assert np.array_equal(given, grid)  # given cells never change


def test_smoothing_never_adds_parallels_when_strict() -> None:
    # holding the alto's C4 through its 16th G4 would make octaves with the soprano's leap
    soprano, alto = [72, 72, 72, 81, 81], [60, 60, 67, 69, 69]
    grid = np.array([[s, a, 55, 48] for s, a in zip(soprano, alto, strict=True)])
    free = np.zeros_like(grid, dtype=bool)
    free[:, 1] = True
    loose = smooth_fragments(grid, free, [1], RuleWeights())
    assert loose[2, 1] == 60 and parallels(loose) == 1
    strict = smooth_fragments(grid, free, [1], RuleWeights(), strict=True)
    assert strict[2, 1] == 69 and parallels(strict) == 0
