"""The compiled byte plane is built by the project's set-up where a compiler exists, and
its absence is said, not fatal."""

import importlib.util
import os
import shutil
import subprocess
import sys
from pathlib import Path

from supervisor.native import build


def test_setup_built_it_where_a_compiler_and_headers_exist():
    if build.compiler() is None:
        return  # nothing to build with: the Python byte path runs, as the next test shows
    assert build.target().exists(), "scripts/setup did not build the byte plane"
    assert not build.stale(), "the byte plane is older than its sources: run scripts/setup"


def test_it_builds_from_its_sources_and_loads(tmp_path):
    if build.compiler() is None:
        return
    assert build.build(tmp_path) is None
    spec = importlib.util.spec_from_file_location("_plane", build.target(tmp_path))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    ring = module.Ring(16)
    ring.append(b"built here")
    assert ring.read(0) == (0, b"built here")


def test_without_a_compiler_it_says_so_and_the_python_path_runs(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setenv("CC", "no-such-cc")
    assert build.build(tmp_path) == "no C compiler (cc, gcc or clang) on PATH"
    done = subprocess.run(
        [sys.executable, "-m", "supervisor.native.build"],
        env={**os.environ, "PATH": str(tmp_path), "CC": "no-such-cc"},
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    # the real module is built already: nothing to do, whatever the compiler
    assert done.returncode == 0


def test_a_compiler_that_fails_is_quoted(tmp_path, monkeypatch):
    fake = tmp_path / "bin"
    fake.mkdir()
    cc = fake / "cc"
    cc.write_text("#!/bin/sh\necho 'cc: error: nothing works' >&2\nexit 1\n")
    cc.chmod(0o755)
    monkeypatch.setenv("PATH", str(fake))
    monkeypatch.setenv("CC", "cc")
    why = build.build(tmp_path)
    assert why is not None and why.startswith("cc failed:") and "nothing works" in why
    assert not list(tmp_path.glob("_plane*"))


def test_the_python_path_runs_when_the_module_is_missing(tmp_path):
    copy = tmp_path / "supervisor"
    shutil.copytree(
        Path(build.HERE).parent, copy, ignore=shutil.ignore_patterns("_plane*", "__pycache__")
    )
    code = "from supervisor import native; print(native.load()[1])"
    env = {**os.environ, "PYTHONPATH": str(tmp_path)}
    env.pop("PTYSUP_NATIVE", None)
    env.pop("PTYSUP_PLANE_DIR", None)
    done = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, cwd=tmp_path
    )
    assert "the compiled byte plane does not load" in done.stdout
    env["PTYSUP_NATIVE"] = "1"
    done = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, cwd=tmp_path
    )
    assert done.returncode != 0 and "NativeUnavailable" in done.stderr


def test_a_sanitized_build_goes_to_a_directory_of_its_own():
    flags = build.command(["cc"], Path("out.so"), "thread")
    assert "-fsanitize=thread" in flags and "-O2" not in flags
    assert build.sanitized("thread") != build.HERE
    assert "-fsanitize=thread" not in build.command(["cc"], Path("out.so"))
