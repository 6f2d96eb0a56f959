"""benchmarks/gan.py --repeats: each figure over several draws (pure aggregation, no model)."""

from __future__ import annotations

import json

import pytest

from benchhelpers import load_benchmark


@pytest.fixture(scope="module")
def bench():  # type: ignore[no-untyped-def]
    return load_benchmark("gan")


def test_repeated_draws_give_the_mean_spread_and_passes(
    bench, capsys: pytest.CaptureFixture[str]
) -> None:  # type: ignore[no-untyped-def]
    def run(seed: int) -> None:  # a fake model's rows: two figures moving with the seed
        bench.emit({"settings": {"seed": seed}})
        ours = 0.9 + 0.1 * seed
        bench.emit({"benchmark": "x/td", "ours": ours, "peer": 0.7, "data": 1.0,
                    "ratio": 0.3 / abs(ours - 1.0) if ours != 1.0 else 9.0,
                    "closer_than_baseline": ours < 1.05, "unit": "value"})  # fmt: skip
        bench.emit({"benchmark": "x/variety", "ours": 0.7 + 0.05 * seed, "peer": 0.8,
                    "ratio": (0.7 + 0.05 * seed) / 0.8, "unit": "ratio"})  # fmt: skip

    bench.repeated(run, 0, 3)
    lines = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    rows = {r["benchmark"]: r for r in lines if "benchmark" in r}
    assert [r["settings"]["seed"] for r in lines if "settings" in r] == [0, 1, 2]
    td = rows["x/td"]
    assert td["ours"] == pytest.approx(1.0) and td["per_seed"] == [0.9, 1.0, 1.1]
    assert td["sd"] == pytest.approx(0.1) and (td["min"], td["max"]) == (0.9, 1.1)
    assert td["closer_than_baseline"] == "2/3" and td["peer"] == 0.7 and td["data"] == 1.0
    assert td["unit"] == "value; mean of 3 draws, seeds 0..2"
    assert rows["x/variety"]["ours"] == pytest.approx(0.75)
    assert rows["x/variety"]["ratio"] == pytest.approx(0.75 / 0.8, abs=1e-4)
    assert "data" in rows["x/variety"] and rows["x/variety"]["data"] is None

    bench.repeated(run, 5, 1)  # one draw: the rows as the model printed them
    one = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    assert one[1] == {"benchmark": "x/td", "ours": 1.4, "peer": 0.7, "data": 1.0,
                      "ratio": pytest.approx(0.75), "closer_than_baseline": False,
                      "unit": "value"}  # fmt: skip
