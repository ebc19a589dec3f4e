"""What a child starts with: its environment and working directory."""

import os

from supervisor.daemon.spawn.childenv import ChildSetup, base_env, child_cwd, child_env
from supervisor.daemon.spawn.context import Context
from supervisor.environment import DEFAULT_PATH, minimal_env

SETUP = ChildSetup("/run/ptysup/control.sock")
CONTEXT = Context("/work/a", "abc123", "explicit")


def test_no_environment_from_the_caller_means_a_minimal_one():
    env = child_env(None, "7", SETUP, None)
    for key, value in minimal_env().items():
        assert env[key] == value
    assert env["TERM"] == "xterm-256color"
    assert env["PATH"] == DEFAULT_PATH
    assert env["PTYSUP_SESSION"] == "7" and env["PTYSUP_SOCKET"] == SETUP.socket_path


def test_the_callers_environment_is_kept_and_its_term_respected():
    env = child_env({"FOO": "bar", "TERM": "dumb"}, "1", SETUP, None)
    assert env["FOO"] == "bar" and env["TERM"] == "dumb"
    assert "HOME" not in env


def test_an_empty_term_without_a_caller_environment_is_never_left():
    assert child_env(None, "1", SETUP, None)["TERM"] == "xterm-256color"
    assert child_env({"A": "1"}, "1", SETUP, None)["TERM"] == "xterm-256color"


def test_the_session_variables_cannot_be_claimed_by_the_caller():
    env = child_env({"PTYSUP_SESSION": "99", "PTYSUP_SOCKET": "/elsewhere"}, "4", SETUP, None)
    assert env["PTYSUP_SESSION"] == "4" and env["PTYSUP_SOCKET"] == SETUP.socket_path


def test_the_opencode_context_overrides_what_the_caller_had():
    caller = {"OPENCODE_DIRECTORY": "/home/u", "OPENCODE_PROJECT_ID": "global"}
    env = child_env(caller, "1", SETUP, CONTEXT)
    assert env["OPENCODE_DIRECTORY"] == "/work/a" and env["OPENCODE_PROJECT_ID"] == "abc123"


def test_with_the_gateway_the_child_gets_its_url_and_never_the_servers_password():
    caller = {"OPENCODE_SERVER_PASSWORD": "secret", "OPENCODE_SERVER_USERNAME": "me", "A": "1"}
    env = child_env(caller, "1", SETUP, CONTEXT, gateway_url="http://127.0.0.1:9/s/xyz")
    assert env["OPENCODE_SERVER_URL"] == "http://127.0.0.1:9/s/xyz"
    assert "OPENCODE_SERVER_PASSWORD" not in env and "OPENCODE_SERVER_USERNAME" not in env
    assert env["A"] == "1"
    without = child_env(caller, "1", SETUP, CONTEXT)
    assert without["OPENCODE_SERVER_PASSWORD"] == "secret"


def test_the_shim_comes_first_on_path_once():
    setup = ChildSetup("/s.sock", shim_dir="/run/shim", opencode_bin="/opt/oc/bin/opencode")
    path = os.pathsep.join(["/usr/bin", "/run/shim", "/bin"])
    env = child_env({"PATH": path}, "1", setup, CONTEXT)
    assert env["PATH"].split(os.pathsep) == ["/run/shim", "/usr/bin", "/bin"]
    assert env["PTYSUP_OPENCODE_BIN"] == "/opt/oc/bin/opencode"


def test_without_a_shim_path_and_binary_are_left_alone():
    env = child_env({"PATH": "/usr/bin"}, "1", ChildSetup("/s", opencode_bin="/x"), CONTEXT)
    assert env["PATH"] == "/usr/bin" and "PTYSUP_OPENCODE_BIN" not in env


def test_the_working_directory_defaults_to_home_then_root():
    assert child_cwd("/tmp", {"HOME": "/h"}) == "/tmp"
    assert child_cwd(None, {"HOME": "/h"}) == "/h"
    assert child_cwd(None, {}) == "/"
    assert child_cwd(None, None) == base_env(None)["HOME"]
