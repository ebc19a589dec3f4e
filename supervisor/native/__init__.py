"""The byte plane in compiled code, when it is built and wanted.

`PTYSUP_NATIVE=0` keeps the pure-Python byte path; `PTYSUP_NATIVE=1` makes a daemon that
cannot load the compiled one refuse to start; unset, the compiled one runs where it loads.
`PTYSUP_PLANE_DIR` names a directory whose build of it loads first (a sanitized build:
`scripts/sanitize`).
"""

import os
from types import ModuleType

ENV = "PTYSUP_NATIVE"
PLANE_DIR = "PTYSUP_PLANE_DIR"

if os.environ.get(PLANE_DIR):
    __path__.insert(0, os.environ[PLANE_DIR])


class NativeUnavailable(RuntimeError):
    """PTYSUP_NATIVE=1, and the compiled byte plane does not load."""


def load() -> tuple[ModuleType | None, str]:
    """The compiled module (or None) and a word on why: for `status`."""
    wanted = os.environ.get(ENV, "").strip()
    if wanted not in ("", "0", "1"):
        raise NativeUnavailable(f"{ENV} must be 0 or 1, not {wanted!r}")
    if wanted == "0":
        return None, f"{ENV}=0"
    try:
        from supervisor.native import _plane
    except ImportError as exc:
        why = f"the compiled byte plane does not load ({exc}); run scripts/setup to build it"
        if wanted == "1":
            raise NativeUnavailable(why) from None
        return None, why
    return _plane, "compiled"
