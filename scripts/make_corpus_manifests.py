"""Write the split manifests of the music21 corpus sources (bach, folk, palestrina).

Scans the installed music21's corpus (bytes only, no parsing) and writes
``src/musegen/data/vendor/corpus-NAME.json``; the result depends only on the corpus files, so
running it again on the same music21 version gives the same files. Run from the repository
root:

    .venv/bin/python scripts/make_corpus_manifests.py [bach folk palestrina]
"""

from __future__ import annotations

import argparse

from musegen.data.sources import SOURCES
from musegen.data.sources._corpus import CorpusSource, dump_manifest

NAMES = ("bach", "folk", "palestrina")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", metavar="NAME", help=f"any of {', '.join(NAMES)}")
    args = parser.parse_args()
    unknown = set(args.names) - set(NAMES)
    if unknown:
        parser.error(f"unknown source(s): {', '.join(sorted(unknown))}")
    for name in args.names or NAMES:
        source = SOURCES[name]()
        assert isinstance(source, CorpusSource)
        manifest = source.build_manifest()
        path = source.manifest_path()
        path.write_text(dump_manifest(manifest))
        dups = len(manifest["duplicates"])
        print(f"{path.name}: {manifest['counts']} ({dups} duplicates left out)")


if __name__ == "__main__":
    main()
