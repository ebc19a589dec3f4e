"""structlog set-up for the daemon: JSON lines unless stderr is a terminal."""

import contextlib
import logging
import sys
from typing import Literal

import structlog


class _SafeLogger(structlog.PrintLogger):
    """Logs to stderr; a line that cannot be written (full disk, closed pipe) is dropped."""

    def msg(self, message: str) -> None:
        with contextlib.suppress(OSError, ValueError):
            super().msg(message)

    log = debug = info = warn = warning = msg
    fatal = failure = err = error = critical = exception = msg


class _SafeLoggerFactory:
    def __call__(self, *args: object) -> _SafeLogger:
        return _SafeLogger(sys.stderr)


def configure(level: str = "info", fmt: Literal["auto", "json", "console"] = "auto") -> None:
    use_json = fmt == "json" or (fmt == "auto" and not sys.stderr.isatty())
    renderer: structlog.typing.Processor = (
        structlog.processors.JSONRenderer()
        if use_json
        else structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(
            logging.getLevelNamesMapping()[level.upper()]
        ),
        logger_factory=_SafeLoggerFactory(),
        cache_logger_on_first_use=True,
    )
