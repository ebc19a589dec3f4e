"""Issue 23, item 4 (the units installer): `ptysup service install` writes its unit files
through a new temporary file (O_EXCL), never through a link planted at the old fixed name
`<unit>.tmp`, and refuses a link where its unit file belongs. A fake HOME under tmp_path."""

from __future__ import annotations

from pathlib import Path

import pytest

from supervisor.service import install as si
from supervisor.service import units
from supervisor.service.units import ServiceError

BASHRC = b"# my bashrc\n"


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    home = tmp_path / "home"
    home.mkdir()
    (home / ".bashrc").write_bytes(BASHRC)
    return {"HOME": str(home), "XDG_CONFIG_HOME": str(home / ".config"), "PATH": "/usr/bin:/bin"}


def files_only(plan: si.Plan) -> si.Plan:
    """The plan's own file steps, without the service manager's commands."""
    return si.Plan(plan.manager, [s for s in plan.steps if not isinstance(s, si.Run)])


@pytest.mark.parametrize("manager", [si.SYSTEMD, si.LAUNCHD])
def test_a_planted_tmp_link_is_not_written_through(manager: str, env: dict[str, str]) -> None:
    bashrc = Path(env["HOME"]) / ".bashrc"
    plan = si.install_plan(manager, "/run/user/1/ptysup.sock", socket_activation=True, env=env)
    writes = [s for s in plan.steps if isinstance(s, si.Write)]
    assert writes
    for write in writes:
        write.path.parent.mkdir(parents=True, exist_ok=True)
        write.path.with_name(write.path.name + ".tmp").symlink_to(bashrc)

    si.execute(files_only(plan), env, echo=False)
    assert bashrc.read_bytes() == BASHRC
    planted = {w.path.with_name(w.path.name + ".tmp") for w in writes}
    for write in writes:
        assert not write.path.is_symlink() and write.path.read_bytes() == write.content
        assert write.path.stat().st_mode & 0o777 == 0o644
    left = {p for w in writes for p in w.path.parent.iterdir() if p.name.endswith(".tmp")}
    assert left == planted, "only the planted links; no temporary left"
    assert all(p.is_symlink() for p in planted)


def test_a_link_where_the_unit_file_belongs_is_refused(env: dict[str, str]) -> None:
    bashrc = Path(env["HOME"]) / ".bashrc"
    directory = units.systemd_unit_dir(env)
    directory.mkdir(parents=True)
    (directory / units.SERVICE_UNIT).symlink_to(bashrc)
    plan = si.install_plan(si.SYSTEMD, "/run/user/1/ptysup.sock", socket_activation=False, env=env)
    with pytest.raises(ServiceError, match=f"{directory / units.SERVICE_UNIT} is a symbolic link"):
        si.execute(files_only(plan), env, echo=False)
    assert bashrc.read_bytes() == BASHRC
    assert (directory / units.SERVICE_UNIT).is_symlink()


def test_render_does_not_write_through_a_link_in_the_output_directory(
    tmp_path: Path, env: dict[str, str]
) -> None:
    import subprocess

    from tests.conftest import PTYSUP

    out = tmp_path / "out"
    out.mkdir()
    bashrc = Path(env["HOME"]) / ".bashrc"
    (out / units.SERVICE_UNIT).symlink_to(bashrc)
    done = subprocess.run(
        [PTYSUP, "service", "render", "--systemd", "--output", str(out)],
        env={**env, "PTYSUP_SOCKET": str(tmp_path / "s" / "control.sock")},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 1 and "symbolic link" in done.stderr, done.stderr
    assert bashrc.read_bytes() == BASHRC
