"""Every engine runs every test. An engine is skipped only where its wheel cannot exist; where
it should be installed and is not, its tests fail."""

import platform
import sys

import pytest

from supervisor.screen import ENGINES, EngineUnavailable, engine_class

MACHINE = platform.machine().lower()
# Where each binding publishes wheels (pyte is pure Python: everywhere).
WHEELS = {
    "ghostty": (
        (sys.platform == "linux" and MACHINE in ("x86_64", "amd64", "aarch64", "arm64"))
        or (sys.platform == "darwin" and MACHINE == "arm64"),
        "pyghostty has wheels only for Linux x86_64/aarch64 and macOS arm64",
    ),
    "avt": (
        (sys.platform == "linux" and MACHINE in ("x86_64", "amd64")) or sys.platform == "darwin",
        "pyavt has wheels only for Linux x86_64 and macOS",
    ),
    "pyte": (True, ""),
}


def require(name: str) -> None:
    possible, why = WHEELS[name]
    if not possible:
        pytest.skip(f"{why}, not {sys.platform} {MACHINE}")
    try:
        engine_class(name)
    except EngineUnavailable as e:
        pytest.fail(f"{e}: it has a wheel here, so it must be installed")


@pytest.fixture(params=list(ENGINES))
def engine_name(request: pytest.FixtureRequest) -> str:
    require(request.param)
    return request.param


@pytest.fixture(params=list(ENGINES))
def other_engine(request: pytest.FixtureRequest) -> str:
    require(request.param)
    return request.param
