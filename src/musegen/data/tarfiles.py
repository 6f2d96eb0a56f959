"""Tar shards written in one fixed form, fast: USTAR headers (POSIX.1-1988) made here, the
bytes Python's ``tarfile`` writes for the same members (``format=USTAR_FORMAT``, mode 0644,
owner 0, no names, time 0: the test holds them equal), at a fraction of its cost per member
(``tarfile`` copies and re-encodes a ``TarInfo`` per member: most of a shard's writing time
when pieces are small). The shard's sha256 is taken as it is written.
"""

from __future__ import annotations

import hashlib
import io
from functools import lru_cache
from typing import BinaryIO

import numpy as np

BLOCK = 512
RECORD = 20 * BLOCK  # a tar ends padded to whole records
NAME_BYTES = 100


def ustar_header(name: str, size: int) -> bytes:
    """The header block of a regular file ``name`` of ``size`` bytes (mode 0644, owner and
    group 0 without names, modified at time 0)."""
    raw = name.encode("utf-8")
    if len(raw) > NAME_BYTES:
        raise ValueError(f"member name longer than {NAME_BYTES} bytes: {name!r}")
    block = b"".join(
        [
            raw.ljust(NAME_BYTES, b"\0"),
            b"0000644\0",  # mode
            b"0000000\0",  # uid
            b"0000000\0",  # gid
            b"%011o\0" % size,
            b"00000000000\0",  # mtime
            b" " * 8,  # the checksum counts its own field as spaces
            b"0",  # a regular file
            b"\0" * 100,  # link name
            b"ustar\x0000",
            b"\0" * 32,  # user name
            b"\0" * 32,  # group name
            b"\0" * 16,  # device major and minor: empty, for a regular file
            b"\0" * 155,  # name prefix
        ]
    ).ljust(BLOCK, b"\0")
    return block[:148] + b"%06o\0" % sum(block) + block[155:]


class TarWriter:
    """Members appended to a binary file; :meth:`close` ends the archive (the file stays
    open). ``sha256`` is the hex digest of everything written, once closed."""

    def __init__(self, f: BinaryIO) -> None:
        self._f = f
        self._hash = hashlib.sha256()
        self.offset = 0

    def _write(self, data: bytes) -> None:
        self._f.write(data)
        self._hash.update(data)
        self.offset += len(data)

    def add(self, name: str, data: bytes) -> tuple[int, int]:
        """Append a member; returns where its data starts in the file, and its size."""
        start = self.offset + BLOCK
        self._write(ustar_header(name, len(data)) + data + b"\0" * (-len(data) % BLOCK))
        return start, len(data)

    def close(self) -> None:
        self._write(b"\0" * (2 * BLOCK))
        if self.offset % RECORD:
            self._write(b"\0" * (RECORD - self.offset % RECORD))

    @property
    def sha256(self) -> str:
        return self._hash.hexdigest()


def npy_bytes(arr: np.ndarray) -> bytes:
    """What ``np.save`` writes for a C-contiguous numeric array (its header cached by dtype
    and shape: building it is most of ``np.save``'s cost for a small array)."""
    arr = np.ascontiguousarray(arr)
    return _npy_header(arr.dtype.str, arr.shape) + arr.tobytes()


@lru_cache(maxsize=4096)
def _npy_header(dtype: str, shape: tuple[int, ...]) -> bytes:
    buf = io.BytesIO()
    np.save(buf, np.empty(shape, np.dtype(dtype)), allow_pickle=False)
    size = int(np.prod(shape)) * np.dtype(dtype).itemsize
    return buf.getvalue()[: len(buf.getvalue()) - size]
