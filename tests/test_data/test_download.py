"""download.py against a local HTTP server: checksums, resume, corruption, safe extraction."""

from __future__ import annotations

import hashlib
import io
import tarfile
from pathlib import Path

import pytest

from datahelpers import make_tar_gz, make_zip, serve
from musegen.data.download import (
    Archive,
    download,
    download_and_extract,
    extract,
    extraction_marker,
    verify,
)
from musegen.errors import MusegenError

PAYLOAD = bytes(range(256)) * 400  # 102,400 bytes: several reads, not one


def archive_for(url: str, data: bytes, **kw: object) -> Archive:
    facts: dict[str, object] = {
        "size": len(data),
        "sha256": hashlib.sha256(data).hexdigest(),
        "md5": hashlib.md5(data).hexdigest(),
    }
    facts.update(kw)
    return Archive(url=url, filename="data.bin", **facts)  # type: ignore[arg-type]


def test_download_verifies_and_reuses(tmp_path: Path) -> None:
    with serve({"/data.bin": PAYLOAD}) as srv:
        archive = archive_for(srv.url("/data.bin"), PAYLOAD)
        path = download(archive, tmp_path, progress=False)
        assert path.read_bytes() == PAYLOAD
        assert not (tmp_path / "data.bin.part").exists()
        n = len(srv.requests)
        assert download(archive, tmp_path, progress=False) == path  # verified file: no request
        assert len(srv.requests) == n


def test_resume_after_interrupted_transfer(tmp_path: Path) -> None:
    with serve({"/data.bin": PAYLOAD}) as srv:
        srv.cut_first["/data.bin"] = 30_000
        archive = archive_for(srv.url("/data.bin"), PAYLOAD)
        with pytest.raises(MusegenError, match="run again to resume"):
            download(archive, tmp_path, progress=False, retries=0)
        part = tmp_path / "data.bin.part"
        assert part.stat().st_size == 30_000
        assert not (tmp_path / "data.bin").exists()
        path = download(archive, tmp_path, progress=False)
        assert path.read_bytes() == PAYLOAD
        assert srv.requests[-1] == ("/data.bin", "bytes=30000-")
        assert not part.exists()


def test_interruption_is_resumed_within_one_call(tmp_path: Path) -> None:
    with serve({"/data.bin": PAYLOAD}) as srv:
        srv.cut_first["/data.bin"] = 12_345
        path = download(archive_for(srv.url("/data.bin"), PAYLOAD), tmp_path, progress=False)
        assert path.read_bytes() == PAYLOAD
        assert [r for _, r in srv.requests] == [None, "bytes=12345-"]


@pytest.mark.parametrize(
    ("facts", "problem"),
    [
        ({"sha256": "0" * 64}, "sha256 checksum mismatch"),
        ({"md5": "0" * 32, "sha256": None}, "md5 checksum mismatch"),
        ({"size": len(PAYLOAD) + 1}, "size"),
    ],
)
def test_corrupt_download_leaves_no_file(tmp_path: Path, facts: dict, problem: str) -> None:
    with serve({"/data.bin": PAYLOAD}) as srv:
        archive = archive_for(srv.url("/data.bin"), PAYLOAD, **facts)
        with pytest.raises(MusegenError, match=problem):
            download(archive, tmp_path, progress=False)
    assert list(tmp_path.iterdir()) == []


def test_complete_part_file_is_finished_without_network(tmp_path: Path) -> None:
    (tmp_path / "data.bin.part").write_bytes(PAYLOAD)
    archive = archive_for("http://127.0.0.1:9/unreachable", PAYLOAD)
    assert download(archive, tmp_path, progress=False).read_bytes() == PAYLOAD


def test_http_error_is_a_musegen_error(tmp_path: Path) -> None:
    with serve({}) as srv, pytest.raises(MusegenError, match="cannot download"):
        download(archive_for(srv.url("/missing.bin"), PAYLOAD), tmp_path, progress=False)


def test_verify_reports_size_first(tmp_path: Path) -> None:
    path = tmp_path / "x"
    path.write_bytes(b"abc")
    assert (
        verify(path, Archive("u", "x", size=3, sha256=hashlib.sha256(b"abc").hexdigest())) is None
    )
    assert "size 3 bytes" in (verify(path, Archive("u", "x", size=4)) or "")


@pytest.mark.parametrize("kind", ["tar.gz", "zip"])
def test_extract_once(tmp_path: Path, kind: str) -> None:
    members = {"top/a.txt": b"a", "top/sub/b.txt": b"b"}
    archive = tmp_path / f"x.{kind}"
    archive.write_bytes(make_tar_gz(members) if kind == "tar.gz" else make_zip(members))
    out = extract(archive, tmp_path / "out")
    assert (out / "top" / "sub" / "b.txt").read_bytes() == b"b"
    assert extraction_marker(archive, out).exists()
    (out / "top" / "a.txt").unlink()
    extract(archive, out)  # marker present: nothing redone
    assert not (out / "top" / "a.txt").exists()


@pytest.mark.parametrize("name", ["../evil.txt", "ok/../../evil.txt", "/tmp/evil-abs.txt"])
@pytest.mark.parametrize("kind", ["tar.gz", "zip"])
def test_path_traversal_is_refused(tmp_path: Path, kind: str, name: str) -> None:
    members = {"fine.txt": b"ok", name: b"evil"}
    archive = tmp_path / "a" / f"bad.{kind}"
    archive.parent.mkdir()
    archive.write_bytes(make_tar_gz(members) if kind == "tar.gz" else make_zip(members))
    out = tmp_path / "a" / "out"
    with pytest.raises(MusegenError, match=r"outside|link"):
        extract(archive, out)
    assert not (tmp_path / "evil.txt").exists() and not (tmp_path / "a" / "evil.txt").exists()
    assert not out.exists() and not (tmp_path / "a" / "out.extracting").exists()


def test_link_member_is_refused(tmp_path: Path) -> None:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        link = tarfile.TarInfo("link")
        link.type = tarfile.SYMTYPE
        link.linkname = "/etc/passwd"
        tar.addfile(link)
    archive = tmp_path / "link.tar.gz"
    archive.write_bytes(buf.getvalue())
    with pytest.raises(MusegenError, match="link"):
        extract(archive, tmp_path / "out")


def test_garbage_archive(tmp_path: Path) -> None:
    archive = tmp_path / "junk.tar.gz"
    archive.write_bytes(b"not an archive at all")
    with pytest.raises(MusegenError, match="not a zip or tar"):
        extract(archive, tmp_path / "out")


def test_download_and_extract_skips_when_done(tmp_path: Path) -> None:
    data = make_zip({"d/x.txt": b"x"})
    with serve({"/d.zip": data}) as srv:
        archive = Archive(srv.url("/d.zip"), "d.zip", len(data), hashlib.sha256(data).hexdigest())
        download_and_extract(archive, tmp_path, progress=False, keep_archive=False)
        assert (tmp_path / "d" / "x.txt").read_bytes() == b"x"
        assert not (tmp_path / "d.zip").exists()
        n = len(srv.requests)
        download_and_extract(archive, tmp_path, progress=False)
        assert len(srv.requests) == n
