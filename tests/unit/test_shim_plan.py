"""How the `opencode` shim rewrites a command line run outside the terminal's project."""

import pytest

from supervisor.opencode.cmdline import plan

COMMANDS = frozenset(
    {"run", "attach", "session", "serve", "export", "import", "stats", "db", "models", "mcp"}
)
ANCHOR = "/repo/a"
CWD = "/home/u"


def decide(*argv: str, **caps: bool):
    options = {"tui_project": True, "run_dir": True, "attach_dir": True, **caps}
    return plan(list(argv), cwd=CWD, anchor=ANCHOR, commands=COMMANDS, **options)


def test_tui_gets_the_project_as_its_positional_argument():
    p = decide()
    assert (p.argv, p.cwd) == ([ANCHOR], None)
    p = decide("--session", "ses_1", "-m", "x/y")
    assert p.argv == [ANCHOR, "--session", "ses_1", "-m", "x/y"]


def test_an_explicit_project_wins():
    p = decide("/elsewhere")
    assert (p.argv, p.cwd) == (["/elsewhere"], None)
    p = decide("-s", "ses_1", ".")
    assert p.argv == ["-s", "ses_1", "."]


def test_option_values_are_not_mistaken_for_a_project():
    p = decide("--model", "anthropic/claude", "--log-level=DEBUG")
    assert p.argv[0] == ANCHOR


def test_run_and_attach_get_dir():
    p = decide("run", "hello there")
    assert p.argv == ["run", "hello there", "--dir", ANCHOR] and p.cwd is None
    p = decide("attach", "http://127.0.0.1:4096")
    assert p.argv == ["attach", "http://127.0.0.1:4096", "--dir", ANCHOR]


def test_explicit_dir_is_left_alone():
    assert decide("run", "--dir", "/x", "hi").argv == ["run", "--dir", "/x", "hi"]
    assert decide("run", "--dir=/x", "hi").argv == ["run", "--dir=/x", "hi"]


def test_run_file_arguments_keep_their_meaning():
    # -f is an array option: every word after it up to the next option is a file
    p = decide("run", "look", "-f", "notes.md", "--file=../b.txt", "-f", "/abs.txt")
    assert p.argv == [
        "run",
        "look",
        "-f",
        f"{CWD}/notes.md",
        f"--file={CWD}/../b.txt",
        "-f",
        "/abs.txt",
        "--dir",
        ANCHOR,
    ]


def test_other_subcommands_run_in_the_project(tmp_path):
    (tmp_path / "dump.json").write_text("{}")
    p = plan(
        ["import", "dump.json"],
        cwd=str(tmp_path),
        anchor=ANCHOR,
        commands=COMMANDS,
        tui_project=True,
        run_dir=True,
        attach_dir=True,
    )
    assert p.cwd == ANCHOR
    assert p.argv == ["import", str(tmp_path / "dump.json")]
    p = decide("session", "list")
    assert (p.argv, p.cwd) == (["session", "list"], ANCHOR)


@pytest.mark.parametrize("flag", ["--help", "-h", "--version", "-v"])
def test_help_and_version_pass_through(flag):
    p = decide("run", flag)
    assert (p.argv, p.cwd) == (["run", flag], None)


def test_without_the_flags_it_falls_back_to_the_working_directory():
    p = decide("run", "hi", run_dir=False)
    assert (p.argv, p.cwd) == (["run", "hi"], ANCHOR)
    p = decide(tui_project=False)
    assert (p.argv, p.cwd) == ([], ANCHOR)


def test_a_double_dash_ends_options():
    p = decide("--", "run")
    assert p.argv == ["--", "run"] and p.cwd is None


def test_attach_without_a_url_attaches_to_the_terminals_server():
    from supervisor.opencode.cmdline import with_server_url

    url = "http://127.0.0.1:5000/s/abc"
    assert with_server_url(["attach"], url) == ["attach", url]
    assert with_server_url(["attach", "--dir", "/x"], url) == ["attach", url, "--dir", "/x"]
    assert with_server_url(["attach", "http://other:1"], url) == ["attach", "http://other:1"]
    assert with_server_url(["attach", "--help"], url) == ["attach", "--help"]
    assert with_server_url(["run", "hi"], url) == ["run", "hi"]
    assert with_server_url([], url) == []
    assert with_server_url(["attach"], None) == ["attach"]
