from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import PTYSUP, Sandbox, make_sandbox
from tests.opencode.helpers import OPENCODE, commit, git
from tests.plugin.scripted_model import ScriptedModel, serving


@dataclass
class World:
    """A private HOME with ptysup's daemon socket, the plugin installed, project A (a git
    repository with a commit), and OpenCode configured for the scripted model."""

    box: Sandbox
    env: dict[str, str]
    project: Path
    model: ScriptedModel

    def opencode(self, *args: str, cwd: Path | None = None, timeout: float = 240) -> str:
        done = subprocess.run(
            [str(OPENCODE), *args],
            cwd=cwd or self.project,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        assert done.returncode == 0, (
            f"opencode {args} exited {done.returncode}:\n{done.stderr[-4000:]}"
        )
        return done.stdout

    def results(self, tool: str) -> list[str]:
        """What the given tool returned to the model, in order (from the requests seen)."""
        out: list[str] = []
        for body in self.model.seen:
            names = {}
            for message in body.get("messages", []):
                for call in message.get("tool_calls") or []:
                    names[call["id"]] = call["function"]["name"]
                if message.get("role") == "tool" and names.get(message.get("tool_call_id")) == tool:
                    content = message.get("content")
                    text = content if isinstance(content, str) else json.dumps(content)
                    if text not in out:
                        out.append(text)
        return out


@contextmanager
def opened_world(base: Path, *, daemon_env: bool = False) -> Iterator[World]:
    """A World under `base`; with `daemon_env`, what the CLI starts (the daemon, so its
    shells) gets OpenCode's environment too."""
    box = make_sandbox(base)
    env = {
        **box.env,
        "PATH": f"{OPENCODE.parent}:{box.env['PATH']}",
        "OPENCODE_DISABLE_AUTOUPDATE": "1",
        "OPENCODE_DISABLE_MODELS_FETCH": "1",
    }
    if daemon_env:
        box.env = env
    project = base / "A"
    (project / "sub").mkdir(parents=True)
    git(project, "init", "-q", env=env)
    commit(project, "a", env=env)
    subprocess.run(
        [PTYSUP, "opencode", "plugin", "install"], env=env, check=True, capture_output=True
    )
    model = ScriptedModel({})
    with serving(model):
        config = Path(env["XDG_CONFIG_HOME"]) / "opencode" / "opencode.json"
        config.write_text(
            json.dumps(
                {
                    "provider": model.provider_config(),
                    "model": "scripted/m",
                    "small_model": "scripted/m",
                    "permission": {"external_directory": "allow"},
                }
            )
        )
        try:
            yield World(box, env, project, model)
        finally:
            left = box.cleanup()
            assert not left, f"processes left behind: {left}"


@pytest.fixture
def world(short_tmp: Path) -> Iterator[World]:
    with opened_world(short_tmp) as opened:
        yield opened
