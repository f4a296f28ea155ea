"""Periodic jobs other apps hang on the SIP timer loop (`runtime.every`), with injected time."""

import asyncio

import pytest

from sipws import runtime
from sipws.transports.delivery import delivery


@pytest.fixture
def jobs(monkeypatch):
    monkeypatch.setattr(runtime, "_periodic", {})
    monkeypatch.setattr(delivery, "owns_sip_sockets", True)
    return runtime._periodic


def test_a_job_runs_at_once_then_every_interval_and_never_twice_at_a_time(jobs):
    runs, release = [], asyncio.Event()

    async def job(now):
        runs.append(now)
        await release.wait()

    async def ticks():
        runtime.every("test", 1.0, job)
        runtime.start_periodic(10.0)
        await asyncio.sleep(0)
        runtime.start_periodic(11.5)  # due, but the first run is still going
        await asyncio.sleep(0)
        release.set()
        await jobs["test"].task
        runtime.start_periodic(11.6)
        runtime.start_periodic(11.7)  # not due again before 12.6
        await jobs["test"].task

    asyncio.run(ticks())
    assert runs == [10.0, 11.6]


def test_owner_only_jobs_wait_for_the_sip_sockets_and_failures_are_logged(jobs, caplog):
    runs = []

    async def job(now):
        runs.append(now)
        raise RuntimeError("broken job")

    async def ticks():
        runtime.every("owner", 5.0, job)
        delivery.owns_sip_sockets = False  # a Daphne node
        runtime.start_periodic(1.0)
        assert jobs["owner"].task is None
        delivery.owns_sip_sockets = True
        runtime.start_periodic(2.0)
        await jobs["owner"].task

    asyncio.run(ticks())
    assert runs == [2.0]
    assert "periodic job owner failed" in caplog.text
