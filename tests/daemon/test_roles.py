"""Controller and observers of an attached session."""

from supervisor.daemon.clients.outbox import Outbox
from supervisor.daemon.clients.route import Route
from supervisor.daemon.session.roles import Roles
from supervisor.daemon.session.subscription import Subscription
from supervisor.protocol.client import ClientConnection
from supervisor.protocol.messages import Event


def attached(outbox: Outbox, sub_id: int, cols: int, rows: int, keys: bool = True) -> Subscription:
    sub = Subscription(sub_id, "1", 1 << 20, follow=True, input=keys, client=f"pid {sub_id}")
    Route(sub, outbox)
    sub.cols, sub.rows = cols, rows
    return sub


async def roles_told(outbox: Outbox) -> list[tuple[int, str]]:
    outbox.close_after_flush()
    seen = []
    client = ClientConnection()
    while (buffers := await outbox.take()) is not None:
        for event in client.receive_data(b"".join(bytes(b) for b in buffers)):
            if isinstance(event, Event) and event.event == "role":
                seen.append((event.sub, event.fields["role"]))
    return seen


async def test_the_newest_interactive_client_drives_and_the_previous_one_takes_back():
    sizes: list[tuple[int, int]] = []
    events: list[dict] = []
    roles = Roles(
        "1", lambda c, r: sizes.append((c, r)), lambda: True, lambda e, **f: events.append(f)
    )
    outbox = Outbox()
    first = attached(outbox, 1, 80, 24)
    second = attached(outbox, 2, 100, 30)
    watcher = attached(outbox, 3, 60, 20, keys=False)
    roles.attach(first, read_only=False)
    roles.attach(second, read_only=False)
    roles.attach(watcher, read_only=True)
    assert roles.controller is second
    assert roles.observes(first) and roles.observes(watcher) and not roles.observes(second)
    assert sizes == [(80, 24), (100, 30)]
    assert not roles.client_resize(first, 90, 25)
    assert roles.client_resize(second, 120, 40) and sizes[-1] == (120, 40)
    roles.detach(second)
    assert roles.controller is first and sizes[-1] == (90, 25)
    roles.detach(first)
    assert roles.controller is None  # a read-only client never takes control
    assert [e["controller"] for e in events] == [
        {"sub": 1, "client": "pid 1"},
        {"sub": 2, "client": "pid 2"},
        {"sub": 1, "client": "pid 1"},
        None,
    ]
    told = await roles_told(outbox)
    assert [role for sub, role in told if sub == 1] == ["controller", "observer", "controller"]
    assert [role for sub, role in told if sub == 2] == ["controller"]
    assert [role for sub, role in told if sub == 3] == []


async def test_an_exited_session_is_not_resized_by_a_new_controller():
    sizes: list[tuple[int, int]] = []
    roles = Roles("1", lambda c, r: sizes.append((c, r)), lambda: False, lambda e, **f: None)
    roles.attach(attached(Outbox(), 1, 80, 24), read_only=False)
    assert sizes == []
