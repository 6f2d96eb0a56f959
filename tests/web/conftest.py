"""A studio server on a free loopback port, shared by the tests of this folder."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator

import pytest


class Running:
    """A uvicorn server in a thread of this process, on ``url``."""

    def __init__(self, app: object) -> None:
        import uvicorn

        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(app, log_level="warning", lifespan="on")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(
            target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True
        )

    def __enter__(self) -> Running:
        self.thread.start()
        deadline = time.monotonic() + 120
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the studio server did not start")
            time.sleep(0.05)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(30)
        self.sock.close()


@pytest.fixture(scope="package")
def studio(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    pytest.importorskip("fastapi", reason="the web extra (fastapi) is not installed")
    pytest.importorskip("uvicorn", reason="the web extra (uvicorn) is not installed")
    from musegen.web.app import StudioConfig, create_app

    config = StudioConfig(
        data=tmp_path_factory.mktemp("studio"),
        workers=1,
        queue=4,
        time_limit=60,
        max_upload_bytes=64 * 1024,
        max_notes=2000,
    )
    with Running(create_app(config)) as running:
        yield running
