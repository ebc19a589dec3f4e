"""project_for against the real OpenCode, for every shape of directory, before OpenCode saw it."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import urllib.parse
import urllib.request
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest

from supervisor.opencode.project import (
    GLOBAL,
    Project,
    project_for,
    read_cache,
    resolve_directory,
)
from supervisor.opencode.remote import remote_key, remote_project_id

from .helpers import commit, git, opencode_server, private_env

EMPTY_TREE = "4b825dc642cb6eb9a060e54bf8d69288fbee4904"


# --- directories ---------------------------------------------------------------------------


def test_resolve_directory_resolves_symlinks(tmp_path: Path) -> None:
    (tmp_path / "real" / "sub").mkdir(parents=True)
    (tmp_path / "link").symlink_to(tmp_path / "real")
    real = os.path.realpath(tmp_path / "real")
    assert resolve_directory(str(tmp_path / "link" / "sub")) == f"{real}/sub"
    assert resolve_directory(f"{tmp_path}/link/sub/../sub/.") == f"{real}/sub"


def test_resolve_directory_joins_relative_paths_to_the_resolved_cwd(tmp_path: Path) -> None:
    (tmp_path / "a" / "b").mkdir(parents=True)
    (tmp_path / "c").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "a" / "b")
    real = os.path.realpath(tmp_path)
    # ".." is taken from the resolved directory, as OpenCode does with $PWD.
    assert resolve_directory("..", cwd=str(tmp_path / "link")) == f"{real}/a"
    assert resolve_directory("x", cwd=str(tmp_path / "c")) == f"{real}/c/x"


def test_resolve_directory_leaves_a_missing_path_unresolved(tmp_path: Path) -> None:
    (tmp_path / "link").symlink_to(tmp_path)
    missing = f"{tmp_path}/link/missing/../gone"
    assert resolve_directory(missing) == f"{tmp_path}/link/gone"


# --- project ids without OpenCode ------------------------------------------------------------


@pytest.fixture
def repo(tmp_path: Path, oc_env: dict[str, str]) -> Path:
    path = tmp_path / "repo"
    path.mkdir()
    git(path, "init", "-q", env=oc_env)
    commit(path, "repo", env=oc_env)
    return path


def test_a_repo_without_remote_is_its_root_commit(repo: Path, oc_env: dict[str, str]) -> None:
    project = project_for(str(repo), env=oc_env)
    assert project.id == git(repo, "rev-list", "--max-parents=0", "HEAD", env=oc_env)
    assert project.source == "root-commit"
    assert project.worktree == project.directory == os.path.realpath(repo)
    assert project.vcs == "git"


def test_the_cache_file_is_read_but_never_written(repo: Path, oc_env: dict[str, str]) -> None:
    project_for(str(repo), env=oc_env)
    assert not (repo / ".git" / "opencode").exists()
    (repo / ".git" / "opencode").write_text(" cached-id\n")
    assert project_for(str(repo), env=oc_env).id == "cached-id"
    assert read_cache(str(repo / ".git")) == "cached-id"


def test_missing_git_makes_every_directory_global(repo: Path, oc_env: dict[str, str]) -> None:
    project = project_for(str(repo), git=str(repo / "no-such-git"), env=oc_env)
    assert project == Project(GLOBAL, None, os.path.realpath(repo), None, "none")


def test_callers_git_variables_are_dropped_by_default(
    repo: Path, tmp_path: Path, oc_env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    other = tmp_path / "other"
    other.mkdir()
    git(other, "init", "-q", env=oc_env)
    commit(other, "other", env=oc_env)
    monkeypatch.setenv("GIT_DIR", str(other / ".git"))
    monkeypatch.setenv("HOME", oc_env["HOME"])
    expected = git(repo, "rev-parse", "HEAD", env=oc_env)
    assert project_for(str(repo)).id == expected
    assert project_for(str(repo), env={**oc_env, "GIT_DIR": str(other / ".git")}).id != expected


# --- remote URLs -----------------------------------------------------------------------------

REMOTES = {
    "https://github.com/sst/opencode.git": "github.com/sst/opencode",
    "https://user:token@GitHub.com/Org/Repo.git/": "github.com/Org/Repo",
    "git@github.com:org/repo.git": "github.com/org/repo",
    "ssh://git@example.com:2222/team/repo.git": "example.com/team/repo",
    "git://example.org/a/b": "example.org/a/b",
    "https://host/a b/c/../d.git": "host/a%20b/d",
    "github.com:org/repo.git": None,
    "file:///srv/git/repo.git": None,
    "/srv/git/repo.git": None,
    "../sibling": None,
    "https://github.com/": None,
    "ssh://host:port/x": "ssh/host:port/x",
}


@pytest.mark.parametrize(("url", "key"), REMOTES.items())
def test_remote_key(url: str, key: str | None) -> None:
    assert remote_key(url) == key


def test_remote_project_id_is_sha1_of_the_key() -> None:
    digest = hashlib.sha1(b"git-remote:github.com/org/repo").hexdigest()
    assert remote_project_id("git@github.com:org/repo.git") == digest
    assert remote_project_id("file:///srv/x.git") is None


BUN_NORMALISE = r"""
const urls = JSON.parse(require("fs").readFileSync(0, "utf8"));
function key(host, path) {
  const p = path.replace(/^\/+/, "").replace(/\.git\/?$/, "").replace(/\/+$/, "");
  return host && p ? `${host.toLowerCase()}/${p}` : null;
}
function normalise(raw) {
  const text = raw.trim();
  if (!text) return null;
  let url;
  try {
    url = new URL(text);
  } catch {
    const m = text.match(/^([^@/:]+@)?([^/:]+):(.+)$/);
    return m ? key(m[2], m[3]) : null;
  }
  return url.protocol === "file:" ? null : key(url.hostname, url.pathname);
}
console.log(JSON.stringify(urls.map(normalise)));
"""

TRICKY_URLS = [
    *REMOTES,
    "https://0x7f.1/x",
    "http://[0:0::1]:80/a/./b/../c",
    "http://[fe80::1%25eth0]/x",
    "ssh://git@/x",
    "ssh://:22/x",
    "http://user@/x",
    "https://exa%41mple.com/x",
    "https://例え.jp/リポ.git",
    "ssh://例え.jp/リポ.git",
    "https:github.com/a/b",
    "https:\\\\github.com\\a\\b",
    "ssh:\\\\host\\a",
    "http://1.2.3.4.5/x",
    "http://256.1/x",
    "http://09/x",
    "http://0x/x",
    "http://h/a%2e%2E/b",
    "http://h/a/%2e/b",
    "a@b@c:d",
    "ssh://a@b@c/d",
    "http://exa mple.com/x",
    "ssh://exa mple/x",
    "ssh://h/a#b?c",
    " https://padded.example/x ",
    "1abc://h/p",
    "https://h/{a}/`b`/<c>",
    "https://h:65536/x",
    "ssh://[::1/x",
    "https://EXAMPLE.com./x",
    "https://h/a^b|c[d]e'f!$&()*+,;=:@~",
    "ssh://h/a^b|c[d]e'f",
    "https://h/é/ü.git",
    "https://xn--abc.com/x",
    "https://xn--zca.com/x",
    "https://1.2.3/x",
    "https://0300.0250.0.1/x",
    "https://4294967296/x",
    "ssh://h/a/../..",
]


@pytest.mark.opencode
def test_remote_key_agrees_with_opencodes_url_parser(opencode_bin: str) -> None:
    """The same normalisation run on the URL parser of the Bun inside the OpenCode binary."""
    done = subprocess.run(
        [opencode_bin, "-e", BUN_NORMALISE],
        input=json.dumps(TRICKY_URLS),
        env={"PATH": os.environ.get("PATH", os.defpath), "BUN_BE_BUN": "1"},
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    expected = json.loads(done.stdout)
    assert {u: remote_key(u) for u in TRICKY_URLS} == dict(zip(TRICKY_URLS, expected, strict=True))


# --- every shape against the real OpenCode -------------------------------------------------

Builder = Callable[[Path, dict[str, str]], Path]


def _repo(root: Path, name: str, env: dict[str, str], *, commits: int = 1) -> Path:
    path = root / name
    path.mkdir()
    git(path, "init", "-q", env=env)
    for i in range(commits):
        commit(path, f"{name} {i}", env=env)
    return path


def _root_commit(repo: Path, label: str, env: dict[str, str], accept: Callable[[str], bool]) -> str:
    """A parentless commit whose hash passes ``accept`` (hashes are deterministic here)."""
    for n in range(10_000):
        sha = git(repo, "commit-tree", EMPTY_TREE, "-m", f"{label} {n}", env=env)
        if accept(sha):
            return sha
    raise AssertionError("no suitable commit hash")


def _two_roots(root: Path, name: str, env: dict[str, str]) -> tuple[Path, str, str]:
    """main's root sorts after the root of the orphan branch ``other``."""
    path = _repo(root, name, env, commits=0)
    git(path, "mktree", env=env)
    main = _root_commit(path, f"{name} main", env, lambda s: s >= "8")
    other = _root_commit(path, f"{name} other", env, lambda s: s < main)
    git(path, "update-ref", "refs/heads/main", main, env=env)
    git(path, "update-ref", "refs/heads/other", other, env=env)
    git(path, "symbolic-ref", "HEAD", "refs/heads/main", env=env)
    return path, main, other


def _plain(root: Path, env: dict[str, str]) -> Path:
    return _repo(root, "plain", env)


def _subdir(root: Path, env: dict[str, str]) -> Path:
    path = _repo(root, "subdir", env)
    (path / "a" / "b").mkdir(parents=True)
    return path / "a" / "b"


def _worktree(root: Path, env: dict[str, str]) -> Path:
    path = _repo(root, "wtmain", env)
    git(path, "worktree", "add", "-q", str(root / "wt"), env=env)
    (root / "wt" / "pkg").mkdir()
    return root / "wt" / "pkg"


def _merged_roots(root: Path, env: dict[str, str]) -> Path:
    path, _, _ = _two_roots(root, "merged", env)
    git(path, "reset", "-q", "--hard", env=env)
    git(path, "merge", "-q", "--allow-unrelated-histories", "-m", "merge", "other", env=env)
    return path


def _orphan_unmerged(root: Path, env: dict[str, str]) -> Path:
    return _two_roots(root, "orphan", env)[0]


def _head_on_orphan(root: Path, env: dict[str, str]) -> Path:
    path, _, _ = _two_roots(root, "onorphan", env)
    git(path, "symbolic-ref", "HEAD", "refs/heads/other", env=env)
    return path


def _old_cache(root: Path, env: dict[str, str]) -> Path:
    """What OpenCode <= 1.2 cached: the least root of all refs (``--all``)."""
    path, _, other = _two_roots(root, "oldcache", env)
    (path / ".git" / "opencode").write_text(other)
    return path


def _no_commits(root: Path, env: dict[str, str]) -> Path:
    return _repo(root, "empty", env, commits=0)


def _outside_git(root: Path, env: dict[str, str]) -> Path:
    (root / "outside").mkdir()
    return root / "outside"


def _symlink_to_repo(root: Path, env: dict[str, str]) -> Path:
    path = _repo(root, "linked", env)
    (root / "linked-alias").symlink_to(path)
    return root / "linked-alias"


def _symlink_into_repo(root: Path, env: dict[str, str]) -> Path:
    path = _repo(root, "deep", env)
    (path / "a" / "b").mkdir(parents=True)
    (root / "deep-alias").symlink_to(path / "a")
    return root / "deep-alias" / "b"


def _bare(root: Path, env: dict[str, str]) -> Path:
    git(root, "init", "-q", "--bare", "bare.git", env=env)
    return root / "bare.git"


def _nested(root: Path, env: dict[str, str]) -> Path:
    outer = _repo(root, "outer", env)
    (outer / "vendor").mkdir()
    inner = _repo(outer / "vendor", "inner", env)
    (inner / "src").mkdir()
    return inner / "src"


def _junk_dot_git(root: Path, env: dict[str, str]) -> Path:
    (root / "junk" / ".git").mkdir(parents=True)
    return root / "junk"


def _with_remote(name: str, url: str, *, cache: str | None = None) -> Builder:
    def build(root: Path, env: dict[str, str]) -> Path:
        path = _repo(root, name, env)
        git(path, "remote", "add", "origin", url, env=env)
        if cache is not None:
            (path / ".git" / "opencode").write_text(cache)
        return path

    return build


SHAPES: dict[str, Builder] = {
    "plain-repo": _plain,
    "subdirectory": _subdir,
    "linked-worktree": _worktree,
    "merged-two-roots": _merged_roots,
    "unmerged-orphan-branch": _orphan_unmerged,
    "head-on-orphan-branch": _head_on_orphan,
    "cache-from-older-opencode": _old_cache,
    "repo-without-commits": _no_commits,
    "outside-git": _outside_git,
    "symlink-to-repo": _symlink_to_repo,
    "symlink-into-repo": _symlink_into_repo,
    "bare-repo": _bare,
    "nested-repo": _nested,
    "empty-dot-git": _junk_dot_git,
    "remote-https": _with_remote("https", "https://user:secret@Example.com/Team/Proj.git"),
    "remote-scp": _with_remote("scp", "git@example.com:team/proj.git"),
    "remote-ssh-port": _with_remote("sshport", "ssh://git@example.com:2222/team/other.git/"),
    "remote-scp-without-user": _with_remote("scpnouser", "example.com:team/x.git"),
    "remote-file-url": _with_remote("fileurl", "file:///srv/git/x.git"),
    "remote-local-path": _with_remote("localpath", "/srv/git/x.git"),
    "remote-beats-cache": _with_remote("remotecache", "https://example.com/a/b", cache="stale"),
}


PRESET_CACHE = ("cache-from-older-opencode", "remote-beats-cache")


@dataclass(frozen=True)
class Observed:
    directory: str
    env: dict[str, str]
    expected: Project
    opencode_id: str
    opencode_worktree: str
    opencode_directory: str


@pytest.fixture(scope="module")
def shapes(opencode_bin: str, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Observed]:
    """Every shape: project_for first, then what one ``opencode serve`` says about it."""
    base = tmp_path_factory.mktemp("shapes")
    env = private_env(base / "oc")
    root = base / "dirs"
    root.mkdir()
    inside = subprocess.run(["git", "rev-parse"], cwd=root, env=env, capture_output=True)
    assert inside.returncode != 0, f"{root} is inside a git repository; set TMPDIR elsewhere"
    dirs = {name: build(root, env) for name, build in SHAPES.items()}
    expected = {name: project_for(str(d), env=env) for name, d in dirs.items()}
    for name, project in expected.items():
        common = project.git_common_dir
        assert common is None or (read_cache(common) is None) != (name in PRESET_CACHE), name
    server_dir = base / "server"
    server_dir.mkdir()
    with opencode_server(opencode_bin, env=env, cwd=server_dir) as url:

        def ask(name: str) -> Observed:
            query = urllib.parse.urlencode({"directory": str(dirs[name])})
            project = _get_json(f"{url}/project/current?{query}")
            paths = _get_json(f"{url}/path?{query}")
            return Observed(
                str(dirs[name]),
                env,
                expected[name],
                project["id"],
                paths["worktree"],
                paths["directory"],
            )

        with ThreadPoolExecutor(4) as pool:
            return dict(zip(dirs, pool.map(ask, dirs), strict=True))


def _get_json(url: str) -> dict[str, str]:
    with urllib.request.urlopen(url, timeout=30) as response:
        return json.load(response)


@pytest.mark.opencode
@pytest.mark.slow
@pytest.mark.parametrize("shape", SHAPES)
def test_project_matches_opencode(shapes: dict[str, Observed], shape: str) -> None:
    seen = shapes[shape]
    assert seen.expected.id == seen.opencode_id
    assert seen.expected.directory == seen.opencode_directory
    assert (seen.expected.worktree or "/") == seen.opencode_worktree


@pytest.mark.opencode
@pytest.mark.slow
def test_the_shapes_exercise_every_rule(shapes: dict[str, Observed]) -> None:
    sources = {name: seen.expected.source for name, seen in shapes.items()}
    assert sources["plain-repo"] == "root-commit"
    assert sources["cache-from-older-opencode"] == "cache"
    assert sources["remote-https"] == sources["remote-beats-cache"] == "remote"
    assert sources["remote-scp-without-user"] == "root-commit"
    assert shapes["repo-without-commits"].expected.id == GLOBAL
    assert shapes["repo-without-commits"].expected.vcs == "git"
    assert shapes["outside-git"].expected.vcs is None
    merged = shapes["merged-two-roots"]
    roots = git(merged.directory, "rev-list", "--max-parents=0", "HEAD", env=merged.env)
    assert merged.expected.id == min(roots.split()) != roots.split()[0]
    assert (
        shapes["unmerged-orphan-branch"].expected.id != shapes["head-on-orphan-branch"].expected.id
    )
    worktree = shapes["linked-worktree"]
    assert worktree.expected.worktree == os.path.dirname(worktree.expected.directory)


@pytest.mark.opencode
@pytest.mark.slow
def test_opencode_caches_the_id_and_project_for_still_agrees(shapes: dict[str, Observed]) -> None:
    for name, seen in shapes.items():
        common = seen.expected.git_common_dir
        if seen.opencode_id != GLOBAL:
            assert common is not None, name
            assert read_cache(common) == seen.opencode_id, name
        assert project_for(seen.directory, env=seen.env).id == seen.opencode_id, name


@pytest.mark.opencode
@pytest.mark.slow
def test_opencode_honours_git_dir_in_its_environment(
    opencode_bin: str, tmp_path: Path, oc_env: dict[str, str]
) -> None:
    here = _repo(tmp_path, "here", oc_env)
    elsewhere = _repo(tmp_path, "elsewhere", oc_env)
    env = {**oc_env, "GIT_DIR": str(elsewhere / ".git")}
    expected = project_for(str(here), env=env)
    assert expected.id == git(elsewhere, "rev-parse", "HEAD", env=oc_env)
    (tmp_path / "server").mkdir()
    with opencode_server(opencode_bin, env=env, cwd=tmp_path / "server") as url:
        query = urllib.parse.urlencode({"directory": str(here)})
        assert _get_json(f"{url}/project/current?{query}")["id"] == expected.id
