"""Downloading dataset archives: resumable, checksummed, atomic, with a progress bar.

Used by the sources that are too large to ship (Lakh MIDI, MAESTRO). A partial download is
kept as ``NAME.part`` and resumed with an HTTP Range request; the file only gets its final
name once its size and checksum match, so a half-downloaded archive is never mistaken for a
good one.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import shutil
import tarfile
import urllib.error
import urllib.request
import zipfile
from dataclasses import dataclass
from pathlib import Path

from musegen.errors import MusegenError

CHUNK = 1 << 20


@dataclass(frozen=True)
class Archive:
    """A published dataset archive with the checksum its publisher (or a mirror) gives."""

    url: str
    filename: str
    size: int | None = None
    sha256: str | None = None
    md5: str | None = None


def file_digest(path: Path, algorithm: str) -> str:
    h = hashlib.new(algorithm)
    with open(path, "rb") as f:
        while block := f.read(CHUNK):
            h.update(block)
    return h.hexdigest()


def verify(path: Path, archive: Archive) -> str | None:
    """None if ``path`` matches the archive's size and checksums, else what is wrong."""
    size = path.stat().st_size
    if archive.size is not None and size != archive.size:
        return f"size {size} bytes, expected {archive.size}"
    expected = {a: getattr(archive, a) for a in ("sha256", "md5") if getattr(archive, a)}
    hashes = {a: hashlib.new(a) for a in expected}
    if hashes:  # one pass over the file for all checksums
        with open(path, "rb") as f:
            while block := f.read(CHUNK):
                for h in hashes.values():
                    h.update(block)
    for algorithm, digest in expected.items():
        if hashes[algorithm].hexdigest() != digest.lower():
            return f"{algorithm} checksum mismatch"
    return None


def download(
    archive: Archive,
    folder: str | Path,
    progress: bool = True,
    timeout: float = 60,
    retries: int = 3,
) -> Path:
    """Fetch ``archive`` into ``folder`` (resuming a partial download); returns the file.

    An existing file that verifies is reused without touching the network. A transfer that
    breaks off is resumed up to ``retries`` times in this call; after that the partial file
    is kept, and calling again resumes it.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    dest = folder / archive.filename
    if dest.exists() and verify(dest, archive) is None:
        return dest
    part = dest.with_name(dest.name + ".part")
    if part.exists() and archive.size is not None and part.stat().st_size == archive.size:
        if verify(part, archive) is None:  # complete but never renamed
            os.replace(part, dest)
            return dest
        part.unlink()  # full length but wrong bytes: start over
    for attempt in range(retries + 1):
        try:
            _fetch(archive, part, progress, timeout)
            break
        except _Interrupted:
            if attempt == retries:
                raise MusegenError(
                    f"cannot download {archive.url}: the transfer broke off {retries + 1} times; "
                    f"{_kept(part)}"
                ) from None
        except (urllib.error.URLError, http.client.HTTPException, OSError) as e:
            reason = getattr(e, "reason", None) or e
            raise MusegenError(f"cannot download {archive.url}: {reason}; {_kept(part)}") from e
    _finish(part, dest, archive)
    return dest


class _Interrupted(Exception):
    """The server closed the connection before sending the whole file."""


def _kept(part: Path) -> str:
    if part.exists():
        return f"{part.stat().st_size} bytes kept in {part}, run again to resume"
    return "nothing was kept"


def _finish(part: Path, dest: Path, archive: Archive) -> None:
    """Give a downloaded file its final name if it verifies; else delete it and raise."""
    problem = verify(part, archive)
    if problem:
        part.unlink()
        raise MusegenError(
            f"{archive.url}: downloaded file is corrupt ({problem}); removed it, try again"
        )
    os.replace(part, dest)


def _fetch(archive: Archive, part: Path, progress: bool, timeout: float) -> None:
    have = part.stat().st_size if part.exists() else 0
    if archive.size is not None and have > archive.size:
        part.unlink()
        have = 0
    request = urllib.request.Request(archive.url, headers={"User-Agent": "musegen"})
    if have:
        request.add_header("Range", f"bytes={have}-")
    with urllib.request.urlopen(request, timeout=timeout) as response:
        resumed = have > 0 and response.status == 206
        length = response.headers.get("Content-Length")
        expected = int(length) if length else None
        total = (expected + (have if resumed else 0)) if expected is not None else archive.size
        bar = None
        if progress:
            from musegen.utils import progress as show

            bar = show(
                total=total,
                initial=have if resumed else 0,
                unit="B",
                unit_scale=True,
                desc=archive.filename,
            )
        got = 0
        try:
            with open(part, "ab" if resumed else "wb") as f:
                while block := response.read(CHUNK):
                    f.write(block)
                    got += len(block)
                    if bar is not None:
                        bar.update(len(block))
        except (http.client.IncompleteRead, ConnectionError, TimeoutError) as e:
            raise _Interrupted(str(e)) from e
        finally:
            if bar is not None:
                bar.close()
        if expected is not None and got < expected:
            raise _Interrupted(f"got {got} of {expected} bytes")


def extract(path: str | Path, folder: str | Path) -> Path:
    """Unpack a .zip / .tar(.gz|.bz2|.xz) archive into ``folder`` once; returns ``folder``.

    Members that would land outside ``folder`` (absolute paths, ``..``, links) are refused.
    A marker file records a finished extraction so a re-run does nothing.
    """
    path, folder = Path(path), Path(folder)
    marker = extraction_marker(path, folder)
    if marker.exists():
        return folder
    tmp = folder.with_name(folder.name + ".extracting")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        if zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as z:
                for name in z.namelist():
                    _check_member(name, tmp)
                z.extractall(tmp)
        elif tarfile.is_tarfile(path):
            with tarfile.open(path) as t:
                for m in t.getmembers():
                    _check_member(m.name, tmp)
                    if m.issym() or m.islnk() or m.isdev():
                        raise MusegenError(f"{path}: archive member {m.name} is a link or device")
                t.extractall(tmp, filter="data")
        else:
            raise MusegenError(f"{path}: not a zip or tar archive")
    except (zipfile.BadZipFile, tarfile.TarError, EOFError, OSError) as e:
        shutil.rmtree(tmp, ignore_errors=True)
        raise MusegenError(f"{path}: cannot extract ({e})") from e
    except BaseException:  # a refused member, Ctrl-C: leave nothing half-extracted
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    folder.mkdir(parents=True, exist_ok=True)
    for item in tmp.iterdir():
        target = folder / item.name
        if target.exists():
            shutil.rmtree(target) if target.is_dir() else target.unlink()
        os.replace(item, target)
    tmp.rmdir()
    marker.touch()
    return folder


def extraction_marker(path: str | Path, folder: str | Path) -> Path:
    """The file whose presence says ``path`` was fully extracted into ``folder``."""
    return Path(folder) / f".extracted-{Path(path).name}"


def download_and_extract(
    archive: Archive,
    folder: str | Path,
    progress: bool = True,
    keep_archive: bool = True,
    timeout: float = 60,
) -> Path:
    """Download ``archive`` into ``folder`` and unpack it there; returns ``folder``.

    Does nothing once the archive was extracted (even if the archive itself was deleted).
    """
    folder = Path(folder)
    if extraction_marker(archive.filename, folder).exists():
        return folder
    path = download(archive, folder, progress=progress, timeout=timeout)
    extract(path, folder)
    if not keep_archive:
        path.unlink()
    return folder


def _check_member(name: str, root: Path) -> None:
    target = (root / name).resolve()
    if not str(target).startswith(str(root.resolve()) + os.sep) and target != root.resolve():
        raise MusegenError(f"archive member {name!r} would be written outside {root}")
