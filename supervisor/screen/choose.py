"""Which engine runs: the first one whose binding imports, in order of speed, unless
PTYSUP_SCREEN_ENGINE names one."""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from supervisor.screen.types import Engine

ENV = "PTYSUP_SCREEN_ENGINE"
# name -> (module, class), fastest first
ENGINES = {
    "ghostty": ("supervisor.screen.ghostty_engine", "GhosttyEngine"),
    "avt": ("supervisor.screen.avt_engine", "AvtEngine"),
    "pyte": ("supervisor.screen.pyte_engine", "PyteEngine"),
}

Factory = Callable[[int, int, int], "Engine"]


class EngineUnavailable(RuntimeError):
    pass


def engine_class(name: str) -> Factory:
    """The engine called `name`; EngineUnavailable when it is unknown or its binding is not
    installed on this platform."""
    if name not in ENGINES:
        raise EngineUnavailable(f"unknown screen engine {name!r} (one of {', '.join(ENGINES)})")
    module, cls = ENGINES[name]
    try:
        factory: Factory = getattr(importlib.import_module(module), cls)
    except (ImportError, OSError) as e:
        raise EngineUnavailable(f"screen engine {name!r} is not available here: {e}") from e
    return factory


def available_engines() -> list[str]:
    found = []
    for name in ENGINES:
        try:
            engine_class(name)
        except EngineUnavailable:
            continue
        found.append(name)
    return found


def default_engine() -> str:
    """The engine open_engine uses without a name: PTYSUP_SCREEN_ENGINE, else the fastest."""
    wanted = os.environ.get(ENV, "").strip().lower()
    if wanted:
        engine_class(wanted)
        return wanted
    for name in ENGINES:
        try:
            engine_class(name)
        except EngineUnavailable:
            continue
        return name
    raise EngineUnavailable("no screen engine is installed (pyte is a dependency)")


def open_engine(cols: int, rows: int, scrollback: int = 10_000, name: str | None = None) -> Engine:
    return engine_class(name or default_engine())(cols, rows, scrollback)


BINDINGS = {"ghostty": "pyghostty", "avt": "avt", "pyte": "pyte"}


def expected_engine() -> str:
    """The engine `open_engine` will use, found without importing any binding (which can
    take a good part of a second): PTYSUP_SCREEN_ENGINE, else the fastest whose binding is
    installed. `open_engine` still checks that it loads."""
    import importlib.util

    wanted = os.environ.get(ENV, "").strip().lower()
    if wanted:
        return wanted
    for name, binding in BINDINGS.items():
        if importlib.util.find_spec(binding) is not None:
            return name
    return "pyte"
