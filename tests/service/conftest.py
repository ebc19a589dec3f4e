from pathlib import Path

import pytest

from .helpers import make_fake_tools


@pytest.fixture
def fake_tools(tmp_path: Path) -> Path:
    return make_fake_tools(tmp_path)
