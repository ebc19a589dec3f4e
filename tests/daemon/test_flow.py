"""Flow control: lossless subscribers hold the child back while they lag, patient ones for
PATIENCE seconds at most; the others are skipped forward instead."""

import trio
import trio.testing

from supervisor.daemon.clients.outbox import Outbox
from supervisor.daemon.clients.route import Route
from supervisor.daemon.session.flow import PATIENCE, Flow
from supervisor.daemon.session.subscription import Subscription

BACKLOG = 1000


def sub(outbox: Outbox, sub_id: int, **kw: bool) -> Subscription:
    made = Subscription(sub_id, "1", BACKLOG, follow=True, input=False, **kw)
    Route(made, outbox)
    return made


async def test_a_lossy_subscriber_never_holds_the_child_back():
    flow = Flow()
    lossy = sub(Outbox(), 1)
    flow.add(lossy)
    assert not flow.active
    lossy.push(0, b"x" * (BACKLOG * 3))
    assert not flow.congested() and not flow.lagging()
    assert lossy._pending <= BACKLOG  # skipped forward instead


async def test_a_lagging_lossless_subscriber_holds_the_child_until_it_drains():
    outbox = Outbox()
    flow = Flow()
    lossless = sub(outbox, 1, lossless=True)
    flow.add(lossless)
    assert flow.active and not flow.congested()
    lossless.push(0, b"x" * (BACKLOG + 1))
    assert flow.lagging() and flow.congested()
    released = []

    async def waiter() -> None:
        await flow.wait(lambda: BACKLOG + 1)
        released.append(trio.current_time())

    async with trio.open_nursery() as nursery:
        nursery.start_soon(waiter)
        await trio.testing.wait_all_tasks_blocked()
        assert not released
        while await outbox.take() is not None and lossless.queued:
            pass
        await trio.testing.wait_all_tasks_blocked()
    assert released and not flow.congested()
    assert lossless.lossless  # draining in time keeps it lossless


async def test_a_patient_subscriber_that_stays_behind_is_let_go_after_patience(autojump_clock):
    flow = Flow()
    patient = sub(Outbox(), 1, lossless=True, patient=True)
    stubborn = sub(Outbox(), 2, lossless=True)
    for each in (patient, stubborn):
        flow.add(each)
        each.push(0, b"y" * (BACKLOG + 1))
    assert flow.congested()
    start = trio.current_time()
    await flow.wait(lambda: 5000)
    assert trio.current_time() - start >= PATIENCE
    assert not patient.lossless and stubborn.lossless
    assert flow.congested()  # the stubborn one still holds the child back
    flow.remove(stubborn)
    assert not flow.active and not flow.congested()


async def test_removing_a_lagging_subscriber_lets_the_child_go_at_once():
    flow = Flow()
    lossless = sub(Outbox(), 1, lossless=True)
    flow.add(lossless)
    lossless.push(0, b"z" * (BACKLOG + 1))
    assert flow.congested()
    with trio.fail_after(1):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(flow.wait, lambda: 0)
            await trio.testing.wait_all_tasks_blocked()
            flow.remove(lossless)
    assert not flow.active
