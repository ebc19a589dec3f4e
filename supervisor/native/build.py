"""`python -m supervisor.native.build`: compile the byte plane next to its sources with the
C compiler and Python headers this machine has. Without them, it says why and leaves the
pure-Python byte path in charge (exit 0, unless `--require`).

`--sanitize thread` (or `address`, `undefined`) builds it with that sanitizer into
`.tools/sanitize/<name>/` instead, for `PTYSUP_PLANE_DIR` to load (see `scripts/sanitize`)."""

import argparse
import os
import shutil
import subprocess
import sys
import sysconfig
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
SOURCES = [
    "ring.c",
    "poller.c",
    "slots.c",
    "plane_io.c",
    "plane_keys.c",
    "plane_pace.c",
    "plane_life.c",
    "plane.c",
    "module.c",
]
HEADERS = ["ring.h", "poller.h", "plane.h"]
SANITIZERS = ("thread", "address", "undefined")


def sanitized(name: str) -> Path:
    """Where the build with the sanitizer `name` goes."""
    return HERE.parent.parent / ".tools" / "sanitize" / name


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


def command(cc: list[str], output: Path, sanitize: str | None = None) -> list[str]:
    include = sysconfig.get_paths()["include"]
    flags = ["-O2", "-fPIC", "-shared", "-pthread", "-std=c11", "-D_GNU_SOURCE", "-Wall"]
    if sanitize is not None:
        flags[0] = "-O1"
        flags += [f"-fsanitize={sanitize}", "-g", "-fno-omit-frame-pointer"]
    if sys.platform == "darwin":
        flags += ["-undefined", "dynamic_lookup"]
    return [*cc, *flags, f"-I{include}", *(str(HERE / s) for s in SOURCES), "-o", str(output)]


def build(directory: Path = HERE, sanitize: str | None = None) -> str | None:
    """Compile into `directory` if the sources are newer than the module there; None on
    success, else why not."""
    if not stale(directory):
        return None
    cc = compiler()
    if cc is None:
        return "no C compiler (cc, gcc or clang) on PATH"
    if not (Path(sysconfig.get_paths()["include"]) / "Python.h").exists():
        return f"no Python headers (Python.h) in {sysconfig.get_paths()['include']}"
    directory.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=directory) as tmp:
        output = Path(tmp) / target().name
        try:
            done = subprocess.run(command(cc, output, sanitize), capture_output=True, text=True)
        except OSError as exc:
            return f"{' '.join(cc)} cannot run: {exc}"
        if done.returncode != 0:
            return f"{' '.join(cc)} failed:\n{done.stderr.strip()}"
        os.replace(output, target(directory))
    return None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m supervisor.native.build")
    parser.add_argument("--require", action="store_true", help="fail when it cannot be built")
    parser.add_argument("--sanitize", choices=SANITIZERS, help="build with this sanitizer")
    args = parser.parse_args(argv)
    directory = HERE if args.sanitize is None else sanitized(args.sanitize)
    why = build(directory, args.sanitize)
    if why is None:
        print(f"byte plane: {target(directory).relative_to(HERE.parent.parent)}")
        return 0
    if args.sanitize is not None:
        print(f"byte plane not built with -fsanitize={args.sanitize} ({why})", file=sys.stderr)
        return 1
    print(f"byte plane not built ({why}); the pure-Python byte path runs", file=sys.stderr)
    return 1 if args.require else 0


if __name__ == "__main__":
    sys.exit(main())
