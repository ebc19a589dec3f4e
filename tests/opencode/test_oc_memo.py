"""A project id remembered against the repository's state: every change that moves the id
is seen at once, and nothing runs git while the repository stays as it was."""

from __future__ import annotations

import json
from pathlib import Path

from supervisor.opencode.project import (
    GLOBAL,
    Project,
    ProjectMemo,
    project_for,
    repository_state,
    within,
)

from .helpers import commit, git, private_env


class Counting:
    def __init__(self) -> None:
        self.calls: list[str] = []

    def __call__(self, directory: str) -> Project:
        self.calls.append(directory)
        return project_for(directory)


def test_a_first_commit_a_remote_and_a_branch_change_the_answer(tmp_path: Path) -> None:
    env = private_env(tmp_path)
    repo = tmp_path / "repo"
    (repo / "sub").mkdir(parents=True)
    git(repo, "init", "-q", env=env)
    resolve = Counting()
    memo = ProjectMemo(resolve)
    sub = str(repo / "sub")
    assert memo.get(sub).id == GLOBAL
    assert memo.get(sub).id == GLOBAL and len(resolve.calls) == 1

    root = commit(repo, "first", env=env)
    assert memo.get(sub).id == root and len(resolve.calls) == 2
    assert memo.get(sub).id == root and len(resolve.calls) == 2

    git(repo, "checkout", "-q", "--orphan", "other", env=env)
    other = commit(repo, "orphan root", env=env)
    assert memo.get(sub).id == other

    git(repo, "remote", "add", "origin", "https://example.com/o/r.git", env=env)
    assert memo.get(sub).id == project_for(sub).id != other


def test_a_new_repository_around_a_plain_directory_is_seen(tmp_path: Path) -> None:
    env = private_env(tmp_path)
    plain = tmp_path / "plain"
    plain.mkdir()
    memo = ProjectMemo()
    assert memo.get(str(plain)).vcs is None
    before = repository_state(str(plain))
    git(plain, "init", "-q", env=env)
    assert repository_state(str(plain)) != before
    assert memo.get(str(plain)).vcs == "git"
    assert memo.get(str(plain)).id == GLOBAL


def test_a_linked_worktree_follows_its_own_head(tmp_path: Path) -> None:
    env = private_env(tmp_path)
    repo = tmp_path / "repo"
    repo.mkdir()
    git(repo, "init", "-q", env=env)
    root = commit(repo, "first", env=env)
    git(repo, "worktree", "add", "-q", str(tmp_path / "wt"), env=env)
    memo = ProjectMemo()
    state = repository_state(str(tmp_path / "wt"))
    assert memo.get(str(tmp_path / "wt")).id == root
    commit(tmp_path / "wt", "second", env=env)
    assert repository_state(str(tmp_path / "wt")) != state


def test_a_memo_goes_through_json_and_is_bounded(tmp_path: Path) -> None:
    env = private_env(tmp_path)
    dirs = []
    for name in "abc":
        d = tmp_path / name
        d.mkdir()
        git(d, "init", "-q", env=env)
        commit(d, name, env=env)
        dirs.append(str(d))
    first = ProjectMemo(size=2)
    for d in dirs:
        first.get(d)
    assert first.changed
    resolve = Counting()
    second = ProjectMemo(resolve, size=2)
    second.load(json.loads(json.dumps(first.dump())))
    assert not second.changed
    assert [second.get(d).id for d in dirs[1:]] == [project_for(d).id for d in dirs[1:]]
    assert resolve.calls == []
    second.get(dirs[0])
    assert resolve.calls == [dirs[0]]
    second.load([["x"], "junk", ["d", [], {"id": 1}], 7])
    second.load("not a list")


def test_inside_a_global_project_only_its_directory_and_below_count(tmp_path: Path) -> None:
    env = private_env(tmp_path)
    (tmp_path / "plain" / "sub").mkdir(parents=True)
    (tmp_path / "elsewhere").mkdir()
    plain = project_for(str(tmp_path / "plain"))
    assert within(plain, project_for(str(tmp_path / "plain" / "sub")))
    assert not within(plain, project_for(str(tmp_path / "elsewhere")))
    assert not within(plain, project_for(str(tmp_path / "plainer")))
    empty = tmp_path / "empty"
    (empty / "a").mkdir(parents=True)
    (empty / "b").mkdir()
    git(empty, "init", "-q", env=env)
    assert within(project_for(str(empty / "a")), project_for(str(empty / "b")))
    repo = tmp_path / "repo"
    repo.mkdir()
    git(repo, "init", "-q", env=env)
    commit(repo, "r", env=env)
    assert not within(project_for(str(repo)), plain)
    assert within(project_for(str(repo)), project_for(str(repo)))
