"""The shape of the code: no import cycle anywhere, the daemon's packages import only those
below them, and no module grows past what one reader takes in."""

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2] / "supervisor"
MAX_LINES = 400
LAYERS = ["system", "spawn", "session", "registry", "clients", "lifecycle"]
"""The daemon's packages, lowest first: each may import only those before it."""


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports() -> dict[str, set[str]]:
    modules = {module_name(p): p for p in ROOT.rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        found: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                candidates = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
            elif isinstance(node, ast.Import):
                candidates = [a.name for a in node.names]
            else:
                continue
            found |= {c for c in candidates if c in modules and c != name}
        graph[name] = found
    return graph


def test_no_import_cycle_under_supervisor():
    graph = imports()
    state: dict[str, int] = {}

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for nxt in graph[node]:
            if state.get(nxt) == 1:
                cycle = [*path[path.index(nxt) :], nxt] if nxt in path else [node, nxt]
                raise AssertionError("import cycle: " + " -> ".join(cycle))
            if nxt not in state:
                visit(nxt, [*path, nxt])
        state[node] = 2

    for name in sorted(graph):
        if name not in state:
            visit(name, [name])


def layer(module: str) -> int | None:
    parts = module.split(".")
    if parts[:2] != ["supervisor", "daemon"] or len(parts) < 3:
        return None
    return LAYERS.index(parts[2]) if parts[2] in LAYERS else None


def test_the_daemons_packages_import_only_those_below_them():
    wrong = []
    for module, targets in imports().items():
        here = layer(module)
        for target in targets:
            there = layer(target)
            if here is not None and there is not None and there > here:
                wrong.append(f"{module} imports {target}")
            outside = not module.startswith("supervisor.daemon")
            starts_daemon = module == "supervisor.cli.main" and target.startswith(
                "supervisor.daemon.lifecycle"
            )
            if outside and target.startswith("supervisor.daemon") and not starts_daemon:
                wrong.append(f"{module} reaches into the daemon: {target}")
            if module.startswith("supervisor.opencode") and target.startswith("supervisor.daemon"):
                wrong.append(f"{module} imports the daemon")
    assert not wrong, "\n".join(sorted(wrong))


def test_no_module_is_over_the_size_one_reader_takes_in():
    long = {
        str(p.relative_to(ROOT.parent)): n
        for p in (*ROOT.rglob("*.py"), *ROOT.rglob("*.[ch]"))
        if (n := len(p.read_text().splitlines())) > MAX_LINES
    }
    assert not long, long
