"""``musegen live``: its options and errors, and (where rtmidi and a MIDI system are there) a
session through real virtual ports."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest

from musegen.cli import live as cli_live
from musegen.cli.main import main
from musegen.live import modes


def test_help_lists_the_modes(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["live", "--help"])
    text = capsys.readouterr().out
    for mode in modes.MODES:
        assert mode in text
    assert cli_live.MODES == modes.MODES


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["live"], "needs --in PORT and --out PORT"),
        (["live", "--in", "a", "--out", "b", "--bars", "40"], "--bars must be 1..16"),
        (["live", "--in", "a", "--out", "b", "--record", "x.wav"], "the recording is MIDI"),
    ],
)
def test_bad_options_are_one_line_errors(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0]


def test_tempo_and_follow_exclude_each_other(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as e:
        main(["live", "--in", "a", "--out", "b", "--tempo", "90", "--follow"])
    assert e.value.code == 2


def _midi_system() -> None:
    """Skip unless rtmidi is installed and an ALSA sequencer or a JACK server answers."""
    pytest.importorskip("rtmidi", reason="python-rtmidi is not installed (musegen[live])")
    from musegen.errors import MusegenError
    from musegen.live.ports import list_ports

    try:
        list_ports()
    except MusegenError as e:
        pytest.skip(f"no MIDI system here: {e}")


def test_list_ports(capsys: pytest.CaptureFixture[str]) -> None:
    _midi_system()
    assert main(["live", "--list-ports"]) == 0
    out = capsys.readouterr().out
    assert "inputs:" in out and "outputs:" in out


def test_harmonize_through_real_virtual_ports(tmp_path: Path) -> None:
    _midi_system()
    from musegen.live.ports import MidoIn, MidoOut, note_off, note_on
    from musegen.live.session import LiveConfig, LiveSession, run_session

    tag = f"t{time.monotonic_ns() % 10**8}"
    player = MidoOut(f"virtual:{tag}-player", client=f"{tag}-p")
    session_in = MidoIn(f"{tag}-player")
    session_out = MidoOut(f"virtual:{tag}-out", client=f"{tag}-o")
    listener = MidoIn(f"{tag}-out")
    stop = threading.Event()

    def play() -> None:
        time.sleep(1.0)  # connections settle (JACK drops events sent before a new one is live)
        for p in (67, 71, 74, 72):
            player.send(note_on(p, 90))
            time.sleep(0.05)
            player.send(note_off(p))
        time.sleep(0.5)
        stop.set()

    thread = threading.Thread(target=play, daemon=True)
    thread.start()
    session = LiveSession(LiveConfig(mode="harmonize"))
    try:
        result = run_session(
            session, session_in, session_out, stop=stop, duration=20, record_to=tmp_path / "r.mid"
        )
    finally:
        thread.join()
        events = []
        while (ev := listener.receive(0.2)) is not None:
            events.append(ev)
        for port in (player, session_in, session_out, listener):
            port.close()
    assert result.reason == "stopped" and 1 <= result.stats["played"] <= 4
    assert {e.channel for e in events if e.kind == "note_on"} == {1, 2, 3}
