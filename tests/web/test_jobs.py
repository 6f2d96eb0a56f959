"""The job pool: a job over its time limit is stopped and the worker replaced; a full queue
refuses at once; errors come back as one line with their status."""

from __future__ import annotations

import asyncio

import pytest

from musegen.web.jobs import JobFailed, JobPool, JobTimeout, PoolBusy


def test_time_limit_queue_and_errors():
    async def scenario() -> None:
        pool = JobPool(workers=1, queue=1, time_limit=30)
        await pool.start()
        try:
            assert await pool.run("ping", {}) == "pong"
            with pytest.raises(JobTimeout, match="time limit"):
                await pool.run("ping", {"sleep": 5}, limit=0.5)
            assert await pool.run("ping", {}) == "pong"  # a fresh worker took its place
            slow = asyncio.ensure_future(pool.run("ping", {"sleep": 0.5}))
            await asyncio.sleep(0.05)
            queued = asyncio.ensure_future(pool.run("ping", {}))
            await asyncio.sleep(0.05)
            with pytest.raises(PoolBusy):
                await pool.run("ping", {})  # one running, one waiting: full
            assert await slow == "pong" and await queued == "pong"
            with pytest.raises(JobFailed, match="no task") as e:
                await pool.run("nonsense", {})
            assert e.value.status == 400
            assert pool.stats()["pending"] == 0
        finally:
            pool.close()

    asyncio.run(scenario())
