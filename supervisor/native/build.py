"""`python -m supervisor.native.build`: compile the byte plane next to its sources with the
C compiler and Python headers this machine has. Without them, it says why and leaves the
pure-Python byte path in charge (exit 0, unless `--require`)."""

import os
import shutil
import subprocess
import sys
import sysconfig
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
SOURCES = ["ring.c", "poller.c", "slots.c", "plane_io.c", "plane_life.c", "plane.c", "module.c"]
HEADERS = ["ring.h", "poller.h", "plane.h"]


def target(directory: Path = HERE) -> Path:
    return directory / f"_plane{sysconfig.get_config_var('EXT_SUFFIX') or '.so'}"


def stale(directory: Path = HERE) -> bool:
    built = target(directory)
    if not built.exists():
        return True
    mtime = built.stat().st_mtime
    return any((HERE / name).stat().st_mtime > mtime for name in SOURCES + HEADERS)


def compiler() -> list[str] | None:
    configured = (os.environ.get("CC") or sysconfig.get_config_var("CC") or "cc").split()
    for candidate in (configured, ["cc"], ["gcc"], ["clang"]):
        if candidate and shutil.which(candidate[0]):
            return candidate
    return None


def command(cc: list[str], output: Path) -> list[str]:
    include = sysconfig.get_paths()["include"]
    flags = ["-O2", "-fPIC", "-shared", "-pthread", "-std=c11", "-D_GNU_SOURCE", "-Wall"]
    if sys.platform == "darwin":
        flags += ["-undefined", "dynamic_lookup"]
    return [*cc, *flags, f"-I{include}", *(str(HERE / s) for s in SOURCES), "-o", str(output)]


def build(directory: Path = HERE) -> str | None:
    """Compile into `directory` if the sources are newer than the module there; None on
    success, else why not."""
    if not stale(directory):
        return None
    cc = compiler()
    if cc is None:
        return "no C compiler (cc, gcc or clang) on PATH"
    if not (Path(sysconfig.get_paths()["include"]) / "Python.h").exists():
        return f"no Python headers (Python.h) in {sysconfig.get_paths()['include']}"
    with tempfile.TemporaryDirectory(dir=directory) as tmp:
        output = Path(tmp) / target().name
        try:
            done = subprocess.run(command(cc, output), capture_output=True, text=True)
        except OSError as exc:
            return f"{' '.join(cc)} cannot run: {exc}"
        if done.returncode != 0:
            return f"{' '.join(cc)} failed:\n{done.stderr.strip()}"
        os.replace(output, target(directory))
    return None


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    why = build()
    if why is None:
        print(f"byte plane: {target().relative_to(HERE.parent.parent)}")
        return 0
    print(f"byte plane not built ({why}); the pure-Python byte path runs", file=sys.stderr)
    return 1 if "--require" in args else 0


if __name__ == "__main__":
    sys.exit(main())
