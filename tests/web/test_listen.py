"""The listening test's page and API: pieces served by pair and slot only, each answer mapped
to its set on the server and saved at once (JSON and CSV)."""

from __future__ import annotations

import json

import pytest

from webhelpers import Running

httpx = pytest.importorskip("httpx", reason="httpx (the dev extra) is not installed")
pytest.importorskip("fastapi", reason="the web extra (fastapi) is not installed")


def tiny_midi(path, pitch):
    from musegen.io import save
    from musegen.score import Score, Track, make_notes

    save(Score(tracks=[Track(make_notes([0, 480], [480, 480], [pitch, pitch + 2]))]), path)


def test_listening_page_and_answers(tmp_path):
    from musegen.evaluate.listening import read_answers, summarize
    from musegen.web.listen import create_listen_app, prepare

    for group, pitch in (("a", 60), ("b", 72)):
        (tmp_path / group).mkdir()
        for i in range(2):
            tiny_midi(tmp_path / group / f"{group}{i}.mid", pitch + i)
    out = tmp_path / "answers.json"
    test = prepare(tmp_path / "a", tmp_path / "b", 3, 7, out, tmp_path / "stimuli")
    with Running(create_listen_app(test)) as server, httpx.Client(base_url=server.url) as c:
        page = c.get("/")
        assert page.status_code == 200 and "Listening test" in page.text
        info = c.get("/api/listen/test").json()
        assert info["pairs"] == 3 and info["questions"][0]["key"] == "musical"
        assert "a0" not in json.dumps(info) and "A/" not in json.dumps(info)  # no labels
        wav = c.get("/api/listen/audio/0/1")
        assert wav.content[:4] == b"RIFF"
        assert c.get("/api/listen/audio/3/1").status_code == 400
        for pair in range(3):  # always the slot that holds B
            slot = 1 if test.pairs[pair].b_first else 2
            body = {"listener": "x1", "pair": pair, "question": "musical", "choice": slot}
            assert c.post("/api/listen/answer", json=body).status_code == 200
        again = {"listener": "x1", "pair": 0, "question": "musical", "choice": 1}
        assert c.post("/api/listen/answer", json=again).json()["answers"] == 3  # replaced
        bad = {"listener": "../x", "pair": 0, "question": "musical", "choice": 1}
        assert c.post("/api/listen/answer", json=bad).status_code == 422
    (pref,) = summarize(read_answers(out))
    assert pref.n == 3 and pref.chose_b == 2 + test.pairs[0].b_first
    assert out.with_suffix(".csv").read_text().startswith("listener,pair,question,choice")
    assert json.loads(out.read_text())["setup"]["seed"] == 7
