"""Live playing over MIDI ports: ``musegen live``.

``ports`` (the event type, an in-process port pair, mido/python-rtmidi ports), ``clock`` (real
and fake clocks, the beat grid, tempo following), ``scheduler`` (events sent at their time,
the late rule), ``harmony`` (causal key, chord and four-part voicing), ``modes`` (harmonize,
accompany), ``model`` (answer and continue with a token model, working ahead on its KV
cache), ``recorder`` (both parts as one MIDI file), ``session`` (the loop). Nothing here
imports mido or torch until a real port or a model is opened.
"""
