"""Test helpers for data sources: tiny MIDI files, archives, and a local HTTP file server.

The server listens on 127.0.0.1 only, serves byte strings from a dict, honours ``Range:
bytes=N-`` (206 + Content-Range), can cut a file's first response after N bytes (to test
resuming), records every request, and shuts itself down after ``lifetime`` seconds even if
a test forgets to.
"""

from __future__ import annotations

import io
import re
import struct
import tarfile
import threading
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, HTTPServer


def tiny_midi(pitch: int = 60, ticks: int = 480) -> bytes:
    """A valid one-note type-0 MIDI file (480 ticks per quarter); ``ticks`` < 16384."""
    delta = bytes([0x80 | (ticks >> 7), ticks & 0x7F])
    events = bytes([0x00, 0x90, pitch, 64]) + delta + bytes([0x80, pitch, 0, 0x00, 0xFF, 0x2F, 0])
    header = b"MThd" + struct.pack(">IHHH", 6, 0, 1, 480)
    return header + b"MTrk" + struct.pack(">I", len(events)) + events


def make_tar_gz(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def make_zip(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in members.items():
            z.writestr(name, data)
    return buf.getvalue()


@dataclass
class Served:
    """What the server serves and what it saw."""

    files: dict[str, bytes] = field(default_factory=dict)
    cut_first: dict[str, int] = field(default_factory=dict)  # path -> bytes sent, once
    requests: list[tuple[str, str | None]] = field(default_factory=list)  # (path, Range)
    base: str = ""

    def url(self, path: str) -> str:
        return f"{self.base}{path}"


class _Handler(BaseHTTPRequestHandler):
    timeout = 5  # a stuck client cannot hold the server
    served: Served

    def do_GET(self) -> None:
        served = self.served
        rng = self.headers.get("Range")
        served.requests.append((self.path, rng))
        data = served.files.get(self.path)
        if data is None:
            self.send_error(404)
            return
        start, status = 0, 200
        if rng:
            m = re.fullmatch(r"bytes=(\d+)-", rng)
            if not m or int(m.group(1)) >= len(data):
                self.send_error(416)
                return
            start, status = int(m.group(1)), 206
        body = data[start:]
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Accept-Ranges", "bytes")
        if status == 206:
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        self.end_headers()
        cut = served.cut_first.pop(self.path, None)
        self.wfile.write(body if cut is None else body[:cut])
        self.close_connection = True

    def log_message(self, format: str, *args: object) -> None:
        pass


@contextmanager
def serve(files: dict[str, bytes], lifetime: float = 30.0) -> Iterator[Served]:
    """Serve ``files`` (URL path -> bytes) on 127.0.0.1 in a thread while the block runs."""
    served = Served(files=dict(files))
    handler = type("Handler", (_Handler,), {"served": served})
    server = HTTPServer(("127.0.0.1", 0), handler)
    served.base = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.daemon = True
    thread.start()
    watchdog = threading.Timer(lifetime, server.shutdown)
    watchdog.daemon = True
    watchdog.start()
    try:
        yield served
    finally:
        watchdog.cancel()
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
