"""The session index over sessions the real OpenCode created, and the legacy JSON tree."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from supervisor.opencode.project import project_for, resolve_directory
from supervisor.opencode.sessions import (
    InvalidSessionId,
    SessionNotFound,
    SessionRecord,
    data_dir,
    database_paths,
    find_session,
    list_sessions,
)

from .helpers import OpenCodeProcess, commit, git, private_env, running


@dataclass(frozen=True)
class Created:
    env: dict[str, str]
    db: str
    by_cwd: SessionRecord
    by_dir: SessionRecord
    cwd_project: str
    cwd_directory: str
    dir_directory: str


def _wait_for_titles(
    env: dict[str, str], titles: set[str], procs: list[OpenCodeProcess], timeout: float = 60.0
) -> dict[str, SessionRecord]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = {r.title: r for r in list_sessions(env=env) if r.title in titles}
        if set(found) == titles:
            return found
        time.sleep(0.1)
    logs = "\n".join(f"--- {p.proc.args}:\n{p.output()}" for p in procs)
    raise AssertionError(f"OpenCode created no sessions titled {titles}\n{logs}")


@pytest.fixture(scope="module")
def created(opencode_bin: str, tmp_path_factory: pytest.TempPathFactory) -> Created:
    """Two sessions from ``opencode run``: one started in a symlinked subdirectory of repo A,
    one started elsewhere with ``--dir`` into repo B, while the first still runs. The runs
    would fail for want of a model, but only after the session exists; they are ended as
    soon as it does."""
    base = tmp_path_factory.mktemp("sessions")
    env = private_env(base / "oc")
    repo_a, repo_b = base / "repo-a", base / "repo-b"
    for repo in (repo_a, repo_b):
        (repo / "src" / "pkg").mkdir(parents=True)
        git(repo, "init", "-q", env=env)
        commit(repo, repo.name, env=env)
    (base / "alias").symlink_to(repo_a)
    cwd = base / "alias" / "src"
    cwd_project = project_for(str(cwd), env=env).id
    run = [opencode_bin, "run", "--title"]
    # Not started together: two OpenCodes creating a fresh database race on its migrations.
    with running(
        [*run, "title A", "hello"],
        cwd=cwd,
        env={**env, "PWD": str(cwd)},
        log=base / "run-a.log",
    ) as run_a:
        found = _wait_for_titles(env, {"title A"}, [run_a])
        with running(
            [*run, "title B", "--dir", str(repo_b / "src" / "pkg"), "hello"],
            cwd=base,
            env=env,
            log=base / "run-b.log",
        ) as run_b:
            found |= _wait_for_titles(env, {"title B"}, [run_b])
    return Created(
        env=env,
        db=database_paths(env)[0],
        by_cwd=found["title A"],
        by_dir=found["title B"],
        cwd_project=cwd_project,
        cwd_directory=resolve_directory(str(cwd)),
        dir_directory=os.path.realpath(repo_b / "src" / "pkg"),
    )


@pytest.mark.opencode
@pytest.mark.slow
def test_finds_a_session_opencode_created_from_a_symlinked_cwd(created: Created) -> None:
    record = find_session(created.by_cwd.session_id, env=created.env)
    assert record.project_id == created.cwd_project
    assert record.directory == created.cwd_directory
    assert record.title == "title A"
    assert record.store == created.db
    assert record.parent_id is None


@pytest.mark.opencode
@pytest.mark.slow
def test_finds_a_session_opencode_created_with_dir(created: Created) -> None:
    record = find_session(created.by_dir.session_id, env=created.env)
    assert record.directory == created.dir_directory
    assert record.project_id == project_for(created.dir_directory, env=created.env).id
    assert record.project_id != created.cwd_project


@pytest.mark.opencode
@pytest.mark.slow
def test_lists_sessions_by_project(created: Created) -> None:
    everything = list_sessions(env=created.env)
    assert {r.session_id for r in everything} == {
        created.by_cwd.session_id,
        created.by_dir.session_id,
    }
    only_a = list_sessions(created.cwd_project, env=created.env)
    assert [r.session_id for r in only_a] == [created.by_cwd.session_id]


@pytest.mark.opencode
@pytest.mark.slow
def test_unknown_session_names_every_place_searched(created: Created) -> None:
    with pytest.raises(SessionNotFound) as caught:
        find_session("ses_0000000000000000000000000", env=created.env)
    legacy = os.path.join(data_dir(created.env), "storage", "session", "*")
    assert caught.value.searched == [
        created.db,
        os.path.join(legacy, "ses_0000000000000000000000000.json"),
    ]
    for place in caught.value.searched:
        assert place in str(caught.value)


def _snapshot(directory: str) -> dict[str, tuple[int, bytes]]:
    return {
        name: (os.stat(os.path.join(directory, name)).st_mtime_ns, _read(directory, name))
        for name in sorted(os.listdir(directory))
        if name.startswith("opencode") and not name.endswith("-shm")
    }


def _read(directory: str, name: str) -> bytes:
    return Path(directory, name).read_bytes()


@pytest.mark.opencode
@pytest.mark.slow
def test_reading_never_modifies_the_database(created: Created) -> None:
    directory = os.path.dirname(created.db)
    before = _snapshot(directory)
    find_session(created.by_cwd.session_id, env=created.env)
    list_sessions(env=created.env)
    with pytest.raises(SessionNotFound):
        find_session("ses_missing", env=created.env)
    assert _snapshot(directory) == before


@pytest.mark.opencode
@pytest.mark.slow
def test_a_cleanly_closed_database_is_read_without_leaving_files(
    created: Created, tmp_path: Path
) -> None:
    env = private_env(tmp_path / "copy")
    copy = os.path.join(data_dir(env), "opencode.db")
    os.makedirs(os.path.dirname(copy))
    with sqlite3.connect(f"file:{created.db}?mode=ro", uri=True) as src:
        dst = sqlite3.connect(copy)
        src.backup(dst)
        dst.execute("PRAGMA journal_mode = WAL")
        dst.close()
    before = {name: _read(data_dir(env), name) for name in os.listdir(data_dir(env))}
    assert list(before) == ["opencode.db"]
    assert find_session(created.by_cwd.session_id, env=env).store == copy
    after = {name: _read(data_dir(env), name) for name in os.listdir(data_dir(env))}
    assert after == before


@pytest.mark.opencode
@pytest.mark.slow
def test_opencode_db_variable_chooses_the_database(created: Created, tmp_path: Path) -> None:
    moved = tmp_path / "elsewhere.db"
    for suffix in ("", "-wal"):
        shutil.copyfile(created.db + suffix, f"{moved}{suffix}")
    absolute = {**created.env, "OPENCODE_DB": str(moved)}
    assert find_session(created.by_cwd.session_id, env=absolute).store == str(moved)
    relative = {**created.env, "OPENCODE_DB": "../elsewhere.db"}
    assert database_paths(relative) == [
        os.path.join(os.path.dirname(data_dir(created.env)), "elsewhere.db")
    ]
    memory = {**created.env, "OPENCODE_DB": ":memory:"}
    with pytest.raises(SessionNotFound):
        find_session(created.by_cwd.session_id, env=memory)


# --- without OpenCode --------------------------------------------------------------------


def test_a_missing_database_is_not_created(oc_env: dict[str, str]) -> None:
    data = data_dir(oc_env)
    with pytest.raises(SessionNotFound) as caught:
        find_session("ses_abc", env=oc_env)
    assert caught.value.searched[0] == f"{data}/opencode.db (missing)"
    assert list_sessions(env=oc_env) == []
    assert not os.path.exists(data)


@pytest.mark.parametrize(
    "bad", ["", "ses", "../ses_x", "ses_../../x", "ses_a/b", "ses_a.json", "msg_abc", "ses_a\n"]
)
def test_malformed_ids_are_refused(bad: str, oc_env: dict[str, str]) -> None:
    with pytest.raises(InvalidSessionId):
        find_session(bad, env=oc_env)


def _legacy_session(data: str, project: str, session: str, **fields: object) -> Path:
    """A session file as OpenCode 1.1 wrote it."""
    path = Path(data, "storage", "session", project, f"{session}.json")
    path.parent.mkdir(parents=True, exist_ok=True)
    info = {
        "id": session,
        "slug": "quiet-river",
        "version": "1.1.20",
        "projectID": project,
        "directory": "/work/legacy",
        "title": "legacy title",
        "time": {"created": 1736000000000, "updated": 1736000001000},
        **fields,
    }
    path.write_text(json.dumps(info, indent=2))
    return path


def test_reads_the_legacy_json_tree(oc_env: dict[str, str]) -> None:
    data = data_dir(oc_env)
    project = "be64773222be3caddeccc7e18daa90049882de9e"
    path = _legacy_session(data, project, "ses_4423845abffeKHmns5X1nuyqZ6")
    _legacy_session(data, "global", "ses_4423845abffeKHmns5X1nuyqZ7", directory="/", title="g")
    record = find_session("ses_4423845abffeKHmns5X1nuyqZ6", env=oc_env)
    assert record == SessionRecord(
        session_id="ses_4423845abffeKHmns5X1nuyqZ6",
        project_id=project,
        directory="/work/legacy",
        title="legacy title",
        store=str(path),
        parent_id=None,
        time_updated=1736000001000,
    )
    assert [r.session_id for r in list_sessions(project, env=oc_env)] == [record.session_id]
    assert len(list_sessions(env=oc_env)) == 2


def test_legacy_files_that_do_not_fit_are_skipped(oc_env: dict[str, str]) -> None:
    data = data_dir(oc_env)
    _legacy_session(data, "p", "ses_other", id="ses_different")
    _legacy_session(data, "q", "ses_nodir", directory=None)
    broken = Path(data, "storage", "session", "r", "ses_broken.json")
    broken.parent.mkdir(parents=True)
    broken.write_text("{not json")
    for session in ("ses_other", "ses_nodir", "ses_broken"):
        with pytest.raises(SessionNotFound):
            find_session(session, env=oc_env)


@pytest.mark.opencode
@pytest.mark.slow
def test_the_database_wins_over_the_legacy_tree(created: Created, tmp_path: Path) -> None:
    env = private_env(tmp_path / "copy")
    data = data_dir(env)
    os.makedirs(data)
    for suffix in ("", "-wal"):
        shutil.copyfile(created.db + suffix, os.path.join(data, "opencode.db" + suffix))
    sid = created.by_cwd.session_id
    _legacy_session(data, "old-project", sid, title="stale")
    assert find_session(sid, env=env).title == "title A"
    assert {r.session_id: r.title for r in list_sessions(env=env)}[sid] == "title A"


@pytest.mark.opencode
@pytest.mark.parametrize("chosen", [None, "custom/sessions.db", "{tmp}/elsewhere/x.db"])
def test_database_path_is_the_one_opencode_prints(
    opencode_bin: str, oc_env: dict[str, str], tmp_path: Path, chosen: str | None
) -> None:
    env = dict(oc_env)
    if chosen is not None:
        env["OPENCODE_DB"] = chosen.format(tmp=tmp_path)
    expected = database_paths(env)[0]
    os.makedirs(os.path.dirname(expected), exist_ok=True)
    printed = subprocess.run(
        [opencode_bin, "db", "path"], env=env, capture_output=True, text=True, check=True
    ).stdout.strip()
    assert printed == expected
