"""Who drives an attached session: the newest interactive client is the controller (its
keys and window size reach the child); the others observe. When the controller leaves,
the previous interactive client takes over again."""

from collections.abc import Callable
from typing import Any

from supervisor.daemon.session.subscription import Subscription


class Roles:
    def __init__(
        self,
        session_id: str,
        resize: Callable[[int, int], None],
        running: Callable[[], bool],
        emit: Callable[..., None],
    ) -> None:
        self._session_id = session_id
        self._resize = resize
        self._running = running
        self._emit = emit
        self.controller: Subscription | None = None
        self.attached: list[Subscription] = []

    def attach(self, sub: Subscription, *, read_only: bool) -> None:
        """Add an attached client; an interactive one takes control."""
        self.attached.append(sub)
        if not read_only:
            self._set_controller(sub)

    def detach(self, sub: Subscription) -> None:
        if sub in self.attached:
            self.attached.remove(sub)
        if self.controller is sub:
            heirs = [s for s in self.attached if s.input]
            self._set_controller(heirs[-1] if heirs else None)

    def observes(self, sub: Subscription) -> bool:
        """An attached client that is not the controller: its keys are dropped."""
        return sub in self.attached and self.controller is not sub

    def client_resize(self, sub: Subscription, cols: int, rows: int) -> bool:
        """A window size from an attached client: it counts only from the controller."""
        sub.cols, sub.rows = cols, rows
        if self.controller is sub:
            self._resize(cols, rows)
            return True
        return False

    def _set_controller(self, sub: Subscription | None) -> None:
        previous = self.controller
        if previous is sub:
            return
        self.controller = sub
        if previous is not None and previous in self.attached:
            previous.push_event("role", role="observer", session=self._session_id)
        if sub is not None:
            sub.push_event("role", role="controller", session=self._session_id)
            if sub.cols and sub.rows and self._running():
                self._resize(sub.cols, sub.rows)
        controller: dict[str, Any] | None = (
            None if sub is None else {"sub": sub.id, "client": sub.client}
        )
        self._emit("controller", session=self._session_id, controller=controller)
        for changed in (previous, sub):
            if changed is not None and changed.on_role is not None:
                changed.on_role()
