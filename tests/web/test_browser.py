"""The studio in a real headless Chromium (Debian's, driven by Playwright; never a
downloaded browser): load, generate, the piano roll against the MIDI written, playback,
infill of a region selected on the roll, a hostile upload, and no request to another host.
One browser for the module; skipped with a reason where Chromium or Playwright is missing."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from webhelpers import changed_only_region, midi_notes

pytestmark = pytest.mark.slow

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
if not Path(CHROMIUM).exists():
    pytest.skip("no Chromium on this machine (Debian's chromium package)", allow_module_level=True)
playwright_api = pytest.importorskip(
    "playwright.sync_api", reason="Playwright's Python package is not installed (dev extra)"
)
httpx = pytest.importorskip("httpx", reason="httpx (the dev extra) is not installed")


@pytest.fixture(scope="module")
def browser():
    with playwright_api.sync_playwright() as p:
        launched = p.chromium.launch(
            executable_path=CHROMIUM,
            args=["--no-sandbox", "--autoplay-policy=no-user-gesture-required"],
        )
        yield launched
        launched.close()


@pytest.fixture()
def page(browser, studio):
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.requests = []
    page.on("request", lambda request: page.requests.append(request.url))
    page.set_default_timeout(90_000)
    page.goto(studio.url + "/")
    page.wait_for_function("() => document.getElementById('status').textContent === 'ready'")
    yield page
    context.close()


def take_id(page) -> str:
    return page.get_attribute("#downloads a[data-kind=mid]", "href").split("/")[3]


def wait_new_take(page, old: str | None) -> str:
    page.wait_for_function(
        "old => { const a = document.querySelector('#downloads a[data-kind=mid]');"
        " return a && a.getAttribute('href').split('/')[3] !== old; }",
        arg=old,
    )
    return take_id(page)


def test_studio_end_to_end(page, studio):
    client = httpx.Client(base_url=studio.url, timeout=120)
    page.select_option("#source", "model:coconet")
    page.fill("#bars", "3")
    page.fill("#seed", "11")
    page.click("#generate")
    first = wait_new_take(page, None)
    midi = client.get(f"/api/takes/{first}/mid").content
    shown = page.locator("#roll rect.note").count()
    assert shown == sum(len(t) for t in midi_notes(midi)) > 0

    page.click("#play")  # the server's WAV in an <audio> element
    page.wait_for_function("() => document.getElementById('audio').currentTime > 0.2")
    page.eval_on_selector("#audio", "a => a.pause()")

    # select bar 2 by dragging on the roll, keep A and T ticked, infill
    box = page.locator("#roll").bounding_box()
    bars = page.evaluate("() => window.studio.take.bars")
    x = lambda seconds: box["x"] + 10 + seconds * 60  # noqa: E731  (the roll's scale)
    page.mouse.move(x(bars[1]) + 5, box["y"] + 40)
    page.mouse.down()
    page.mouse.move(x(bars[2]) - 5, box["y"] + 60)
    page.mouse.up()
    assert page.input_value("#sel-from") == "2" and page.input_value("#sel-to") == "2"
    page.uncheck("#voices input[value=S]")
    page.uncheck("#voices input[value=B]")
    page.click("#infill")
    second = wait_new_take(page, first)
    after = client.get(f"/api/takes/{second}/mid").content
    assert changed_only_region(midi, after, (2, 2), "AT")
    assert midi_notes(after) != midi_notes(midi)
    assert page.locator("#history li").count() == 2

    # a hostile upload: a clear message, and the page keeps working
    page.set_input_files(
        "#upload", files=[{"name": "evil.mid", "mimeType": "audio/midi", "buffer": b"MThd\0junk"}]
    )
    page.click("#upload-go")
    page.wait_for_function(
        "() => document.getElementById('message').textContent.includes('evil.mid')"
    )
    assert "corrupt" in page.text_content("#message") or "MIDI" in page.text_content("#message")
    page.select_option("#source", "model:folk")
    page.fill("#bars", "2")
    page.click("#generate")
    third = wait_new_take(page, second)
    assert page.locator("#roll rect.note").count() == sum(
        len(t) for t in midi_notes(client.get(f"/api/takes/{third}/mid").content)
    )
    page.wait_for_function("() => document.getElementById('score').naturalWidth > 0")  # engraved

    foreign = [u for u in page.requests if not u.startswith(studio.url + "/")]
    assert foreign == [], foreign
