"""Terminal engines behind one interface: feed a session's output, read its screen, scrollback,
title and modes, redraw it on another terminal, and give a user's terminal back afterwards."""

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
