"""The daemon's settings: variables over the file over the defaults, each one checked, and
every problem named at once."""

from pathlib import Path

import pytest

from supervisor.settings import MiB, Settings, SettingsError, load_settings


def env_with(tmp_path: Path, **extra: str) -> dict[str, str]:
    return {"HOME": str(tmp_path), "XDG_CONFIG_HOME": str(tmp_path / "config"), **extra}


def config(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config" / "pty-supervisor" / "config.toml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_defaults_without_a_file_or_variables(tmp_path):
    assert load_settings(env_with(tmp_path)) == Settings()
    assert Settings().ring_size == MiB and Settings().shim is True


def test_variables_win_over_the_file_and_are_read_as_their_types(tmp_path):
    config(tmp_path, 'ring_size = 65536\nkill_grace = 1\nlog_format = "json"\nshim = false\n')
    env = env_with(tmp_path, PTYSUP_RING_SIZE="131072", ptysup_kill_grace="0.5", PTYSUP_SHIM="on")
    got = load_settings(env)
    assert (got.ring_size, got.kill_grace, got.shim, got.log_format) == (131072, 0.5, True, "json")
    assert load_settings(env_with(tmp_path)).shim is False


@pytest.mark.parametrize(
    ("name", "value", "fragment"),
    [
        ("RING_SIZE", "lots", "PTYSUP_RING_SIZE: expected a whole number (got 'lots')"),
        ("RING_SIZE", "1", "PTYSUP_RING_SIZE: must be from 4096 to"),
        ("KILL_GRACE", "nan", "PTYSUP_KILL_GRACE: expected a finite number"),
        ("SHIM", "maybe", "PTYSUP_SHIM: expected true or false"),
        ("LOG_LEVEL", "loud", "PTYSUP_LOG_LEVEL: expected one of debug, info, warning, error"),
        ("OPENCODE_UPSTREAM", "ftp://x", "PTYSUP_OPENCODE_UPSTREAM"),
    ],
)
def test_a_bad_variable_is_named(tmp_path, name, value, fragment):
    with pytest.raises(SettingsError) as info:
        load_settings(env_with(tmp_path, **{f"PTYSUP_{name}": value}))
    assert fragment in str(info.value)


def test_the_file_is_checked_and_every_problem_named(tmp_path):
    path = config(tmp_path, 'max_sessions = 0\nring_sise = 4096\nshim = "yes"\n')
    with pytest.raises(SettingsError) as info:
        load_settings(env_with(tmp_path))
    message = str(info.value)
    assert f"unknown setting 'ring_sise' in {path}" in message
    assert f"invalid setting max_sessions in {path}: must be from 1 to 100000" in message
    assert f"invalid setting shim in {path}: expected true or false" in message


def test_a_broken_file_and_a_missing_named_file_are_refused(tmp_path):
    config(tmp_path, "ring_size = = 3\n")
    with pytest.raises(SettingsError, match="cannot read settings from"):
        load_settings(env_with(tmp_path))
    missing = str(tmp_path / "nope.toml")
    with pytest.raises(SettingsError, match="PTYSUP_CONFIG: no such file"):
        load_settings(env_with(tmp_path, PTYSUP_CONFIG=missing))


def test_other_ptysup_variables_are_not_settings(tmp_path):
    env = env_with(tmp_path, PTYSUP_SOCKET="/x/s", PTYSUP_SESSION="3")
    assert load_settings(env) == Settings()
