"""Changes of one presentity take turns in this process, first come first served; a
waiter that gives up does not hold up the others (services/ordering, the local part;
the cluster tests cover the Redis lease)."""

import asyncio

from sipws.services.ordering import PresentityLocks

ALICE, BOB = "sip:alice@localhost", "sip:bob@localhost"


def test_changes_of_one_presentity_take_turns_in_arrival_order():
    async def main():
        locks, order = PresentityLocks(), []

        async def change(name: str, uri: str):
            held = await locks.acquire(uri)
            order.append(f"{name} in")
            await asyncio.sleep(0.01)
            order.append(f"{name} out")
            await held.release()

        await asyncio.gather(change("a", ALICE), change("b", ALICE), change("c", ALICE))
        assert order == ["a in", "a out", "b in", "b out", "c in", "c out"]
        order.clear()
        await asyncio.gather(change("a", ALICE), change("b", BOB))  # no turns between them
        assert order == ["a in", "b in", "a out", "b out"]
        assert not locks._queues  # nothing held once all released

    asyncio.run(main())


def test_a_waiter_that_gives_up_does_not_hold_up_the_next():
    async def main():
        locks = PresentityLocks()
        first = await locks.acquire(ALICE)
        impatient = asyncio.create_task(locks.acquire(ALICE))
        patient = asyncio.create_task(locks.acquire(ALICE))
        await asyncio.sleep(0)
        impatient.cancel()
        await asyncio.sleep(0)
        await first.release()
        second = await asyncio.wait_for(patient, 5)
        assert impatient.cancelled()
        await second.release()
        assert not locks._queues

    asyncio.run(main())


def test_a_waiter_cancelled_as_its_turn_comes_passes_the_turn_on():
    async def main():
        locks = PresentityLocks()
        first = await locks.acquire(ALICE)
        granted = asyncio.create_task(locks.acquire(ALICE))
        after = asyncio.create_task(locks.acquire(ALICE))
        await asyncio.sleep(0)
        await first.release()  # `granted` has its turn, but has not run yet...
        granted.cancel()  # ...and is cancelled before it does
        third = await asyncio.wait_for(after, 5)
        assert granted.cancelled()
        await third.release()
        assert not locks._queues

    asyncio.run(main())


def test_the_expiry_sweep_takes_only_presentities_nobody_holds_or_waits_for():
    async def main():
        locks = PresentityLocks()
        held = await locks.acquire(ALICE)
        swept = await locks.try_acquire([ALICE, BOB, BOB])
        assert swept.uris == [BOB]
        later = asyncio.create_task(locks.acquire(BOB))
        await asyncio.sleep(0)
        assert not later.done()  # the sweep holds BOB now
        await swept.release()
        await (await asyncio.wait_for(later, 5)).release()
        await held.release()
        assert not locks._queues

    asyncio.run(main())
