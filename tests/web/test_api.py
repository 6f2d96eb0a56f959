"""The studio's API on a real server (loopback): generate with the smallest settings, files
that match the notes shown, infill of a region, hostile uploads, and no path from a client."""

from __future__ import annotations

import re

import pytest

from webhelpers import changed_only_region, many_notes_midi, midi_notes

httpx = pytest.importorskip("httpx", reason="httpx (the dev extra) is not installed")
pytest.importorskip("fastapi", reason="the web extra (fastapi) is not installed")

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def client(studio):
    with httpx.Client(base_url=studio.url, timeout=120) as c:
        yield c


def test_page_and_assets_are_our_own(client):
    from musegen.web.app import STATIC

    page = client.get("/")
    assert page.status_code == 200 and "musegen studio" in page.text
    assert "default-src 'self'" in page.headers["content-security-policy"]
    for asset in ("studio.js", "studio.css"):
        assert client.get(f"/static/{asset}").status_code == 200
    for path in STATIC.iterdir():  # nothing fetched from another host
        text = path.read_text().replace("http://www.w3.org/2000/svg", "")  # a namespace name
        assert not re.search(r"https?://|//[a-z0-9.-]+\.[a-z]{2,}/", text), path.name


def test_catalog_lists_models_methods_and_harmonizers(client):
    catalog = client.get("/api/catalog").json()
    names = {m["name"]: m for m in catalog["models"]}
    assert {"bach", "coconet", "folk", "jsb-frame", "csp"} <= set(names)
    assert "infill" in names["coconet"]["serves"] and "harmonize" in names["csp"]["serves"]
    assert {m["name"] for m in catalog["methods"]} >= {"markov", "rules", "genetic", "recombine"}


def test_generate_files_and_seed(client):
    take = client.post("/api/generate", json={"model": "coconet", "bars": 3, "seed": 5}).json()
    midi = client.get(take["files"]["mid"]).content
    assert sum(len(t) for t in midi_notes(midi)) == take["n_notes"] == len(take["notes"])
    assert take["settings"]["seed"] == 5 and take["voices"] == "SATB"
    assert len(take["chords"]) == len(take["bars"]) == 3 and take["meter"] == "4/4"
    assert client.get(take["files"]["json"]).json()["seed"] == 5
    wav = client.get(take["files"]["wav"])
    assert wav.content[:4] == b"RIFF" and wav.headers["content-type"] == "audio/wav"
    assert b"<svg" in client.get(take["files"]["svg"]).content[:2000]
    download = client.get(take["files"]["mid"], params={"download": 1})
    assert "attachment" in download.headers["content-disposition"]
    again = client.post("/api/generate", json={"model": "coconet", "bars": 3, "seed": 5}).json()
    assert again["notes"] == take["notes"] and again["id"] != take["id"]

    infilled = client.post(
        "/api/infill", json={"take": take["id"], "bars": [2, 2], "voices": "AT", "seed": 1}
    ).json()
    assert infilled["parent"] == take["id"]
    after = client.get(infilled["files"]["mid"]).content
    assert changed_only_region(midi, after, (2, 2), "AT")
    assert midi_notes(midi) != midi_notes(after)  # and the region did change

    harmonized = client.post("/api/harmonize", json={"take": take["id"], "model": "csp"})
    assert harmonized.status_code == 200 and harmonized.json()["voices"] == "SATB"
    history = client.get("/api/takes").json()["takes"]
    assert {take["id"], infilled["id"]} <= {t["id"] for t in history}


def test_hostile_uploads_get_clear_4xx(client, studio):
    bad = client.post("/api/upload", files={"file": ("x.mid", b"MThd\x00\x00\x00\x06junk")})
    assert bad.status_code == 400 and bad.json()["error"].startswith("x.mid: ")
    assert "/" not in bad.json()["error"].split(":")[0]  # no server path in the message
    wrong = client.post("/api/upload", files={"file": ("x.exe", b"MZ")})
    assert wrong.status_code == 400 and "MIDI, MusicXML or ABC" in wrong.json()["error"]
    big = client.post("/api/upload", files={"file": ("big.mid", b"0" * (65 * 1024))})
    assert big.status_code == 413

    def chunks():  # no Content-Length: the body is counted as it arrives
        for _ in range(400):
            yield b"0" * 1024

    chunked = client.post("/api/generate", content=chunks())
    assert chunked.status_code in (400, 413)
    many = client.post("/api/upload", files={"file": ("many.mid", many_notes_midi(2500))})
    assert many.status_code == 400 and "notes" in many.json()["error"]
    xml = client.post("/api/upload", files={"file": ("bomb.musicxml", b"<?xml version='1.0'?><!DOCTYPE x [<!ENTITY a 'aaaa'>]><x>&a;</x>")})  # fmt: skip
    assert 400 <= xml.status_code < 500
    good = client.post("/api/upload", files={"file": ("ok.mid", many_notes_midi(20))})
    assert good.status_code == 200 and good.json()["n_notes"] == 20
    assert client.get("/api/health").json()["ok"]


def test_no_client_path_reaches_a_file(client):
    for path in (
        "/api/takes/..%2F..%2Fetc%2Fpasswd/mid",
        "/api/takes/aaaaaaaaaaaa/mid",
        "/static/..%2F..%2Fapp.py",
        "/api/takes/../app.py",
    ):
        assert 400 <= client.get(path).status_code < 500, path
    # its own take: the test must not lean on another test having made one
    made = client.post("/api/generate", json={"model": "coconet", "bars": 1, "seed": 3})
    take = made.json()["id"]
    assert client.get(f"/api/takes/{take}/passwd").status_code == 400
    unknown = client.post("/api/corpus", json={"name": "../../etc/passwd"})
    assert unknown.status_code == 400
    assert client.get("/", headers={"Host": "attacker.example"}).status_code == 400
    bad = client.post("/api/generate", json={"model": "coconet", "bars": 1000})
    assert bad.status_code == 422 and "bars" in bad.json()["error"]
    assert client.post("/api/generate", json={"model": "/etc"}).status_code == 400
    unused = client.post("/api/generate", json={"model": "jsb-frame", "temperature": 0.5})
    assert unused.status_code == 400 and unused.json()["error"].startswith("jsb-frame: ")
