"""ABC tune books: one file often holds many tunes, each starting at an ``X:`` line.

Splitting is plain text work (no music parsing), cheap enough for ``pieces()``.
"""

from __future__ import annotations

import hashlib
import re

_X_LINE = re.compile(rb"^X:([^\r\n]*)", re.MULTILINE)
_X_LINES = re.compile(rb"^X:[^\r\n]*(?:\r\n|\r|\n)?", re.MULTILINE)


def split_tunes(data: bytes) -> list[tuple[str, bytes]]:
    """The tunes of an ABC file as ``(key, text)``; ``text`` carries the file header.

    ``key`` is the tune's ``X:`` reference number; a number used again in the same file gets
    ``~2``, ``~3``... so keys are unique. A file without ``X:`` lines gives no tunes.
    """
    found = list(_X_LINE.finditer(data))
    if not found:
        return []
    header = data[: found[0].start()]
    ends = [m.start() for m in found[1:]] + [len(data)]
    seen: dict[str, int] = {}
    out = []
    for m, end in zip(found, ends, strict=True):
        number = m.group(1).strip().decode("utf-8", "replace") or "0"
        seen[number] = seen.get(number, 0) + 1
        key = number if seen[number] == 1 else f"{number}~{seen[number]}"
        out.append((key, header + data[m.start() : end]))
    return out


def tune_sha256(text: bytes) -> str:
    """Content hash of one tune, ignoring its ``X:`` number (so renumbered copies match)."""
    return hashlib.sha256(_X_LINES.sub(b"", text).strip()).hexdigest()
