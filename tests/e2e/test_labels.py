"""Labels on spawn, shown by list and info, and list filtered by them; the context's env."""

import os

import pytest

from tests.conftest import Sandbox

pytestmark = pytest.mark.slow


def test_labels_kept_shown_and_filtered(sandbox: Sandbox) -> None:
    a = sandbox.json(
        "spawn", "--label", "opencode.session=ses_1", "--label", "k=v", "--", "sleep", "30"
    )
    b = sandbox.json("spawn", "--label", "opencode.session=ses_2", "--", "sleep", "30")
    c = sandbox.json("spawn", "--", "sleep", "30")
    assert a["labels"] == {"opencode.session": "ses_1", "k": "v"}
    assert c["labels"] == {}
    assert sandbox.json("info", b["id"])["labels"] == {"opencode.session": "ses_2"}
    everything = sandbox.json("list")
    assert [s["id"] for s in everything] == [a["id"], b["id"], c["id"]]
    only = sandbox.json("list", "--label", "opencode.session=ses_1")
    assert [s["id"] for s in only] == [a["id"]]
    both = sandbox.json("list", "--label", "opencode.session=ses_1", "--label", "k=v")
    assert [s["id"] for s in both] == [a["id"]]
    assert sandbox.json("list", "--label", "opencode.session=ses_1", "--label", "k=w") == []
    assert "label:    k=v" in sandbox.ok("info", a["id"])


@pytest.mark.parametrize(
    ("label", "problem"),
    [
        (".x=1", "invalid label name '.x'"),
        ("a b=1", "invalid label name 'a b'"),
        ("k=" + "v" * 1025, "over 1024 characters"),
    ],
)
def test_bad_labels_are_refused_by_name(sandbox: Sandbox, label: str, problem: str) -> None:
    done = sandbox.run("spawn", f"--label={label}", "--", "true")
    assert done.returncode == 1
    assert problem in done.stderr.decode()


def test_context_carries_what_a_child_gets(sandbox: Sandbox, tmp_path: os.PathLike[str]) -> None:
    context = sandbox.json("context", "--project", str(tmp_path))
    assert context["env"]["OPENCODE_DIRECTORY"] == context["directory"]
    assert context["env"]["OPENCODE_PROJECT_ID"] == context["project_id"]
    assert context["env"]["PTYSUP_SOCKET"] == sandbox.socket
    assert context["shim_dir"] == os.path.join(os.path.dirname(sandbox.socket), "shim")


def test_labels_survive_an_upgrade_in_place(sandbox: Sandbox) -> None:
    sid = sandbox.spawn("sleep", "30", label="who=me")
    sandbox.ok("upgrade")
    assert sandbox.json("info", sid)["labels"] == {"who": "me"}
    assert [s["id"] for s in sandbox.json("list", "--label", "who=me")] == [sid]
