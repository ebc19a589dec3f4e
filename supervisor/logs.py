"""The daemon's log: one line per event on stderr, JSON unless stderr is a terminal.

`get_logger(name)` gives a logger whose calls read `log.info("what happened", key=value)`;
`bind(**fields)` gives one that adds those fields to every line. A line that cannot be
written (a full disk, a closed pipe) is dropped: logging never takes the daemon down.
Kept small and free of dependencies, because every start of the daemon (an upgrade in
place included) imports it before anything else can run.
"""

import json
import sys
import time
import traceback
from typing import Any

LEVELS = {"debug": 10, "info": 20, "warning": 30, "error": 40, "critical": 50}


class _Config:
    threshold = LEVELS["info"]
    use_json = True
    colors = False


_config = _Config()


def configure(level: str = "info", fmt: str = "auto") -> None:
    """`fmt`: "json", "console", or "auto" (JSON unless stderr is a terminal)."""
    _config.threshold = LEVELS.get(level.lower(), LEVELS["info"])
    _config.use_json = fmt == "json" or (fmt == "auto" and not sys.stderr.isatty())
    _config.colors = not _config.use_json and sys.stderr.isatty()


def _timestamp() -> str:
    now = time.time()
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now)) + f".{int(now % 1 * 1e6):06d}Z"


def _text(value: object) -> str:
    return value if isinstance(value, str) else repr(value)


class Logger:
    __slots__ = ("_fields", "_name")

    def __init__(self, name: str, fields: dict[str, Any] | None = None) -> None:
        self._name = name
        self._fields = fields or {}

    def bind(self, **fields: Any) -> "Logger":
        return Logger(self._name, {**self._fields, **fields})

    def _emit(self, level: str, event: str, fields: dict[str, Any], exc: bool) -> None:
        if LEVELS[level] < _config.threshold:
            return
        record = {**self._fields, **fields}
        failure = traceback.format_exc().rstrip() if exc else None
        if _config.use_json:
            line = json.dumps(
                {
                    "event": event,
                    **record,
                    "level": level,
                    "logger": self._name,
                    "timestamp": _timestamp(),
                    **({"exception": failure} if failure else {}),
                },
                default=repr,
            )
        else:
            pairs = " ".join(f"{k}={_text(v)}" for k, v in record.items())
            line = f"{_timestamp()} [{level:<7}] {event:<30} {pairs}".rstrip()
            if failure:
                line += "\n" + failure
        try:
            sys.stderr.write(line + "\n")
            sys.stderr.flush()
        except (OSError, ValueError):
            pass

    def debug(self, event: str, **fields: Any) -> None:
        self._emit("debug", event, fields, False)

    def info(self, event: str, **fields: Any) -> None:
        self._emit("info", event, fields, False)

    def warning(self, event: str, **fields: Any) -> None:
        self._emit("warning", event, fields, False)

    def error(self, event: str, **fields: Any) -> None:
        self._emit("error", event, fields, False)

    def exception(self, event: str, **fields: Any) -> None:
        self._emit("error", event, fields, True)


def get_logger(name: str) -> Logger:
    return Logger(name)
