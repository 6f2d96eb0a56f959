"""Tokenizer throughput, musegen vs MidiTok, on the Bach chorales of music21's corpus.

Both sides start from the same MIDI files already parsed into their own in-memory score type
(musegen ``Score`` via symusic; MidiTok takes a ``symusic.Score``), so only tokenization is
timed. Configurations are matched: 12 positions per quarter, durations up to 8 quarters,
32 velocity bins, program tokens in one stream, tempo and time-signature tokens (REMI).
Notes/s counts the notes of the input files. Best of three runs each.

    .venv/bin/python benchmarks/tokenizer_speed.py      # needs: pip install -e ".[bench]"
"""

from __future__ import annotations

import sys

from _corpus import bach_midi_files, best_time, emit


def miditok_config():  # type: ignore[no-untyped-def]
    import miditok

    return miditok.TokenizerConfig(
        pitch_range=(0, 127),
        beat_res={(0, 8): 12},
        num_velocities=32,
        use_programs=True,
        one_token_stream_for_programs=True,
        use_tempos=True,
        use_time_signatures=True,
    )


def main() -> int:
    try:
        import miditok
        import symusic
    except ImportError:
        print(
            "benchmarks/tokenizer_speed.py needs MidiTok: pip install -e '.[bench]'",
            file=sys.stderr,
        )
        return 2
    from musegen.io import load
    from musegen.tokenizers import get_tokenizer

    files = bach_midi_files()
    ours_scores = [load(f) for f in files]
    peer_scores = [symusic.Score(str(f)) for f in files]
    n_notes = sum(s.note_num() for s in peer_scores)
    assert n_notes == sum(s.n_notes for s in ours_scores), "both sides must read the same notes"
    print(f"# {len(files)} chorales, {n_notes} notes", file=sys.stderr)

    for ours_name, peer_cls in (("remi", miditok.REMI), ("events", miditok.MIDILike)):
        ours = get_tokenizer(ours_name)
        peer = peer_cls(miditok_config())
        ours_ids = [ours.encode(s) for s in ours_scores]
        peer_ids = [peer.encode(s) for s in peer_scores]
        t_ours = best_time(lambda: [ours.encode(s) for s in ours_scores])  # noqa: B023
        t_peer = best_time(lambda: [peer.encode(s) for s in peer_scores])  # noqa: B023
        name = f"tokenize.encode.{ours_name}_vs_miditok_{peer_cls.__name__}"
        emit(name, n_notes / t_ours, n_notes / t_peer, "notes/s")
        t_ours = best_time(lambda: [ours.decode(i) for i in ours_ids])  # noqa: B023
        t_peer = best_time(lambda: [peer.decode(i) for i in peer_ids])  # noqa: B023
        name = f"tokenize.decode.{ours_name}_vs_miditok_{peer_cls.__name__}"
        emit(name, n_notes / t_ours, n_notes / t_peer, "notes/s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
