import pytest

from supervisor.native import build

try:
    from supervisor.native import _plane
except ImportError:
    _plane = None


@pytest.fixture
def plane_module():
    if _plane is None:
        pytest.skip(f"the compiled byte plane cannot be built here: {build.build()}")
    return _plane


@pytest.fixture
def plane(plane_module):
    p = plane_module.Plane()
    yield p
    p.close()
