"""macOS and the BSDs: kqueue's EVFILT_PROC with NOTE_EXIT, through trio's own kqueue."""

import contextlib
import select

import trio


async def wait_ended(pid: int) -> None:
    kqueue = trio.lowlevel.current_kqueue()  # type: ignore[attr-defined]
    event = select.kevent(  # type: ignore[attr-defined]
        pid,
        filter=select.KQ_FILTER_PROC,  # type: ignore[attr-defined]
        flags=select.KQ_EV_ADD | select.KQ_EV_ONESHOT,  # type: ignore[attr-defined]
        fflags=select.KQ_NOTE_EXIT,  # type: ignore[attr-defined]
    )
    try:
        kqueue.control([event], 0)
    except ProcessLookupError:
        return

    def abort(_: object) -> trio.lowlevel.Abort:
        event.flags = select.KQ_EV_DELETE  # type: ignore[attr-defined]
        with contextlib.suppress(OSError):
            kqueue.control([event], 0)
        return trio.lowlevel.Abort.SUCCEEDED

    await trio.lowlevel.wait_kevent(pid, select.KQ_FILTER_PROC, abort)  # type: ignore[attr-defined]
