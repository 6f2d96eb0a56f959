"""Adversarial models (the survey's GAN row), registered as ``musegan``, ``midinet`` and
``crnngan`` in :mod:`musegen.models`; their shared interface is in
:mod:`musegen.models.gan.common`, their objective in :mod:`musegen.train.gan`, their
generator in :mod:`musegen.sampling.gan`.

* :mod:`~musegen.models.gan.musegan`: MuseGAN (Dong et al. 2018), multi-track phrases.
* :mod:`~musegen.models.gan.midinet`: MidiNet (Yang et al. 2017), melody bar by bar over chords.
* :mod:`~musegen.models.gan.crnngan`: C-RNN-GAN (Mogren 2016), LSTMs over note features.
"""
