"""Terminal engines behind one interface: feed a session's output, read its screen, scrollback,
title and modes, redraw it on another terminal, and give a user's terminal back afterwards.

Its parts load on first use: the daemon imports this package at every start, an upgrade in
place included, and needs none of them until a session is redrawn or given back.
"""

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from supervisor.screen.choose import (
        ENGINES,
        ENV,
        EngineUnavailable,
        available_engines,
        default_engine,
        engine_class,
        expected_engine,
        open_engine,
    )
    from supervisor.screen.modes import ModeScanner, detach_sequence, modes_sequence
    from supervisor.screen.types import MOUSE_MODES, Cursor, Engine, Modes, Snapshot

_HOMES = {
    "ENGINES": "choose",
    "ENV": "choose",
    "EngineUnavailable": "choose",
    "available_engines": "choose",
    "default_engine": "choose",
    "engine_class": "choose",
    "expected_engine": "choose",
    "open_engine": "choose",
    "ModeScanner": "modes",
    "detach_sequence": "modes",
    "modes_sequence": "modes",
    "MOUSE_MODES": "types",
    "Cursor": "types",
    "Engine": "types",
    "Modes": "types",
    "Snapshot": "types",
}

__all__ = [
    "ENGINES",
    "ENV",
    "MOUSE_MODES",
    "Cursor",
    "Engine",
    "EngineUnavailable",
    "ModeScanner",
    "Modes",
    "Snapshot",
    "available_engines",
    "default_engine",
    "detach_sequence",
    "engine_class",
    "expected_engine",
    "modes_sequence",
    "open_engine",
]


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{home}"), name)
    globals()[name] = value
    return value
