"""The four rules that decide a spawn's OpenCode project, on real git repositories."""

import os
import subprocess
from pathlib import Path

import pytest

from supervisor.daemon.spawn.context import (
    CALLER_ENV,
    CWD,
    EXPLICIT,
    PARENT_SESSION,
    Context,
    ProjectCache,
    decide,
)

GIT_ENV = {
    "GIT_AUTHOR_NAME": "t",
    "GIT_AUTHOR_EMAIL": "t@example.invalid",
    "GIT_COMMITTER_NAME": "t",
    "GIT_COMMITTER_EMAIL": "t@example.invalid",
    "GIT_CONFIG_GLOBAL": os.devnull,
    "GIT_CONFIG_NOSYSTEM": "1",
}


def repo(path: Path) -> str:
    path.mkdir(parents=True)
    env = {**os.environ, **GIT_ENV}
    subprocess.run(["git", "init", "-q", str(path)], check=True, env=env)
    subprocess.run(
        ["git", "-C", str(path), "commit", "-q", "--allow-empty", "-m", "root"],
        check=True,
        env=env,
    )
    root = subprocess.run(
        ["git", "-C", str(path), "rev-list", "--max-parents=0", "HEAD"],
        check=True,
        capture_output=True,
        text=True,
        env=env,
    ).stdout.split()[0]
    return root


@pytest.fixture
def projects(tmp_path: Path) -> dict[str, object]:
    a = tmp_path / "a"
    b = tmp_path / "b"
    plain = tmp_path / "plain"
    plain.mkdir()
    return {"a": (str(a), repo(a)), "b": (str(b), repo(b)), "plain": str(plain)}


async def test_an_explicit_project_wins_over_everything(projects):
    a_dir, a_id = projects["a"]
    b_dir, _ = projects["b"]
    parent = Context(b_dir, "other", PARENT_SESSION, "9")
    found = await decide(
        ProjectCache(), explicit=a_dir, parent=("9", parent), caller_directory=b_dir, cwd=b_dir
    )
    assert (found.directory, found.project_id, found.source) == (a_dir, a_id, EXPLICIT)
    assert found.worktree == a_dir


async def test_a_caller_inside_a_session_gets_its_context_whatever_the_cwd(projects):
    a_dir, a_id = projects["a"]
    inherited = Context(a_dir, a_id, CWD, None, a_dir)
    found = await decide(
        ProjectCache(),
        explicit=None,
        parent=("3", inherited),
        caller_directory=None,
        cwd=projects["plain"],
    )
    assert found == Context(a_dir, a_id, PARENT_SESSION, "3", a_dir)


async def test_the_callers_own_directory_comes_before_the_cwd(projects):
    b_dir, b_id = projects["b"]
    found = await decide(
        ProjectCache(), explicit=None, parent=None, caller_directory=b_dir, cwd=projects["plain"]
    )
    assert (found.directory, found.project_id, found.source) == (b_dir, b_id, CALLER_ENV)


async def test_a_relative_caller_directory_is_not_trusted(projects):
    found = await decide(
        ProjectCache(), explicit=None, parent=None, caller_directory="a", cwd=projects["plain"]
    )
    assert (found.source, found.project_id) == (CWD, "global")


async def test_the_cwd_resolves_through_symlinks_to_its_repository(projects, tmp_path):
    a_dir, a_id = projects["a"]
    inner = Path(a_dir) / "src"
    inner.mkdir()
    link = tmp_path / "link"
    link.symlink_to(inner)
    found = await decide(
        ProjectCache(), explicit=None, parent=None, caller_directory=None, cwd=str(link)
    )
    assert (found.directory, found.project_id, found.source) == (str(inner), a_id, CWD)
    assert found.worktree == a_dir


async def test_the_project_cache_answers_repeats_without_resolving_again(projects):
    calls = []
    a_dir, a_id = projects["a"]

    def resolve(directory):
        from supervisor.opencode.project import project_for

        calls.append(directory)
        return project_for(directory)

    cache = ProjectCache(resolve)
    first = await cache.get(a_dir)
    second = await cache.get(a_dir)
    assert first.id == second.id == a_id and calls == [a_dir]


def test_the_context_goes_into_the_environment_and_back():
    context = Context("/p", "abc", PARENT_SESSION, "2", "/p")
    assert context.env() == {"OPENCODE_DIRECTORY": "/p", "OPENCODE_PROJECT_ID": "abc"}
    assert Context.from_dict(context.describe()) == context
