"""Audio models and metrics: a DDSP-style neural synthesizer trained on our SoundFont renders
(``synth``), audio metrics (``metrics``), bridges to published audio models (``bridges``).

Nothing heavy is imported here: torch, scipy, transformers and diffusers load inside the
functions that need them.
"""
