"""A studio server on a free loopback port, shared by the tests of this folder."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from webhelpers import Running


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
