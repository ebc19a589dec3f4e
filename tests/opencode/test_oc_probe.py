"""Finding the real opencode past the shim, and reading what it supports from its help."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from supervisor.opencode import probe as probe_module
from supervisor.opencode.probe import (
    Capabilities,
    OpenCodeNotFound,
    ProbeFailed,
    find_opencode,
    probe,
)


class CountingPopen(subprocess.Popen):
    calls = 0

    def __init__(self, *args: object, **kwargs: object) -> None:
        CountingPopen.calls += 1
        super().__init__(*args, **kwargs)


@pytest.fixture
def popen_calls(monkeypatch: pytest.MonkeyPatch) -> type[CountingPopen]:
    CountingPopen.calls = 0
    monkeypatch.setattr(probe_module.subprocess, "Popen", CountingPopen)
    return CountingPopen


@pytest.mark.opencode
@pytest.mark.slow
def test_probes_the_real_opencode_once(
    opencode_bin: str, oc_env: dict[str, str], tmp_path: Path, popen_calls: type[CountingPopen]
) -> None:
    caps = probe(opencode_bin, str(tmp_path / "cache"), env=oc_env)
    assert popen_calls.calls == 4
    assert caps.binary == os.path.realpath(opencode_bin)
    assert caps.version == "1.18.33"
    assert caps.tui_positionals == ("project",)
    assert {"run", "attach", "serve", "session", "db", "debug"} <= caps.commands
    assert {"-s", "--session", "-c", "--continue", "--prompt", "--model"} <= caps.tui_flags
    assert {"--dir", "--session", "--attach", "--title", "--format"} <= caps.run_flags
    assert {"--dir", "--session", "--continue", "--password"} <= caps.attach_flags
    assert caps.tui_project and caps.tui_session
    assert caps.run_dir and caps.run_session and caps.run_attach
    assert caps.attach and caps.attach_dir and caps.attach_session
    assert probe(opencode_bin, str(tmp_path / "cache"), env=oc_env) == caps
    assert popen_calls.calls == 4


OLD_HELP = {
    "--version": "0.5.29",
    "--help": """\
Commands:
  opencode [project]        start opencode tui                       [default]
  opencode run [message..]  run opencode with a message
  opencode serve            starts a headless opencode server

Positionals:
  project  path to start opencode in                                  [string]

Options:
  -h, --help        show help                                        [boolean]
  -m, --model       model to use in the format of provider/model      [string]
  -p, --prompt      prompt to use                                      [string]
""",
    "run --help": """\
opencode run [message..]

Options:
  -c, --continue    continue the last session                        [boolean]
  -s, --session     session id to continue                             [string]
      --share       share the session
                    -- with a wrapped description                    [boolean]
""",
}
OLD_HELP["attach --help"] = OLD_HELP["--help"]


def _fake_opencode(directory: Path, help_texts: dict[str, str], *, status: int = 0) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    lines = ["#!/bin/sh", 'case "$*" in']
    for args, text in help_texts.items():
        (directory / f"{args.replace(' ', '_')}.txt").write_text(text)
        lines.append(f'  "{args}") cat "$(dirname "$0")/{args.replace(" ", "_")}.txt" ;;')
    lines += ["esac", f"exit {status}", ""]
    script = directory / "opencode"
    script.write_text("\n".join(lines))
    script.chmod(0o755)
    return script


def test_reads_an_older_opencode_without_attach(
    tmp_path: Path, popen_calls: type[CountingPopen]
) -> None:
    fake = _fake_opencode(tmp_path / "bin", OLD_HELP)
    caps = probe(str(fake), str(tmp_path / "cache"))
    assert caps.version == "0.5.29"
    assert caps.commands == {"run", "serve"}
    assert caps.tui_project and not caps.tui_session
    assert caps.tui_flags == {"-h", "--help", "-m", "--model", "-p", "--prompt"}
    assert caps.run_flags == {"-c", "--continue", "-s", "--session", "--share"}
    assert not caps.run_dir and caps.run_session and not caps.run_attach
    assert not caps.attach and not caps.attach_dir and not caps.attach_session
    assert Capabilities.from_json(caps.to_json()) == caps


def test_a_changed_binary_is_probed_again(tmp_path: Path, popen_calls: type[CountingPopen]) -> None:
    fake = _fake_opencode(tmp_path / "bin", OLD_HELP)
    cache = str(tmp_path / "cache")
    assert probe(str(fake), cache).version == "0.5.29"
    assert probe(str(fake), cache).version == "0.5.29"
    assert popen_calls.calls == 4
    _fake_opencode(tmp_path / "bin", {**OLD_HELP, "--version": "0.6.0"})
    with open(fake, "a") as f:
        f.write("# upgraded\n")
    assert probe(str(fake), cache).version == "0.6.0"
    assert popen_calls.calls == 8


def test_a_damaged_cache_is_ignored(tmp_path: Path) -> None:
    fake = _fake_opencode(tmp_path / "bin", OLD_HELP)
    cache = tmp_path / "cache"
    cache.mkdir()
    (cache / probe_module.CACHE_NAME).write_text("{not json")
    assert probe(str(fake), str(cache)).version == "0.5.29"


def test_a_failing_binary_is_reported(tmp_path: Path) -> None:
    fake = _fake_opencode(tmp_path / "bin", OLD_HELP, status=3)
    with pytest.raises(ProbeFailed, match="exited 3"):
        probe(str(fake), str(tmp_path / "cache"))


def test_a_failing_subcommand_help_means_no_flags(tmp_path: Path) -> None:
    script = tmp_path / "bin" / "opencode"
    _fake_opencode(tmp_path / "bin", OLD_HELP)
    text = script.read_text().replace('"run --help") cat', '"run --help") exit 1; cat')
    script.write_text(text)
    caps = probe(str(script), str(tmp_path / "cache"))
    assert caps.run_flags == frozenset()
    assert caps.tui_project


def test_finds_the_real_opencode_past_the_shim(tmp_path: Path) -> None:
    shim = _fake_opencode(tmp_path / "shim", {}).parent
    real = _fake_opencode(tmp_path / "real", {}).parent
    (tmp_path / "shim-alias").symlink_to(shim)
    (tmp_path / "userbin").mkdir()
    (tmp_path / "userbin" / "opencode").symlink_to(shim / "opencode")
    (tmp_path / "empty").mkdir()
    path = os.pathsep.join(
        str(tmp_path / d) for d in ("empty", "shim-alias", "shim", "userbin", "real")
    )
    assert find_opencode(path=path, skip=[str(shim)]) == str(real / "opencode")
    assert find_opencode(path=path, skip=[str(tmp_path / "shim-alias")]) == str(real / "opencode")
    assert find_opencode(path=path) == str(tmp_path / "shim-alias" / "opencode")
    explicit = find_opencode(path="", binary=str(real / "opencode"))
    assert explicit == str(real / "opencode")


def test_reports_where_it_looked(tmp_path: Path) -> None:
    with pytest.raises(OpenCodeNotFound, match="empty/opencode"):
        find_opencode(path=str(tmp_path / "empty"))
    with pytest.raises(OpenCodeNotFound):
        find_opencode(binary=str(tmp_path / "nothing" / "opencode"))
