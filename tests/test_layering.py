"""landscape/ is math only; imports point downward only: jobs -> cluster -> landscape, and inside jobs/ from
each floor to the floors below it (ARCHITECTURE.md); no import circles anywhere, lazy imports included."""

import ast
import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
LAYERS = ("landscape", "cluster", "jobs")

# The floors of jobs/, lowest first: a module may import its own floor and those below, never above.
JOB_FLOORS = (
    ("jobs.specs", "jobs.plot", "jobs.examples"),  # validated specs and figures: landscape and cluster only
    ("jobs.common",),  # a spec's data, model and checkpoints; reporting; CLI flags
    ("jobs.scan.slices", "jobs.curves.slices", "jobs.trajectories.slices", "jobs.curvature.plane",
     "jobs.scan.stored"),  # slice builders, and the slice a result holds
    ("jobs.scan.problem",),  # the table of slice kinds: a scan spec -> its problem
    ("jobs.scan", "jobs.training"),  # the tiled scan, the weights at a grid point, plain training
    ("jobs.curves", "jobs.trajectories", "jobs.curvature", "jobs.health", "jobs.service",
     "jobs.export", "jobs.view"),  # capabilities
    ("jobs.commands", "jobs.cli"),  # the command line
)


def _imports(folder: str) -> set[str]:
    found = set()
    for path in (REPO / folder).rglob("*.py"):
        for m in re.finditer(r"^\s*(?:from|import)\s+([A-Za-z_]\w*)", path.read_text(), re.M):
            found.add(m.group(1))
    return found


def _modules() -> dict[str, tuple[Path, bool]]:
    mods = {}
    for top in LAYERS:
        for p in (REPO / top).rglob("*.py"):
            parts = list(p.relative_to(REPO).with_suffix("").parts)
            is_pkg = parts[-1] == "__init__"
            mods[".".join(parts[:-1] if is_pkg else parts)] = (p, is_pkg)
    return mods


def import_graph() -> dict[str, set[str]]:
    """module -> the modules it imports (at the top or inside a function); `from pkg import sub` names pkg.sub,
    and a module's own enclosing packages (run first by Python anyway) are left out."""
    mods = _modules()
    graph = {}
    for name, (path, is_pkg) in mods.items():
        package = name.split(".") if is_pkg else name.split(".")[:-1]
        out = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    base = ".".join(package[: len(package) - node.level + 1] + ([base] if base else []))
                subs = [f"{base}.{a.name}" for a in node.names]
                targets = [s for s in subs if s in mods] or [base]
            else:
                continue
            for t in targets:
                while t and t not in mods:
                    t = t.rpartition(".")[0]
                if t and t != name and not name.startswith(t + "."):
                    out.add(t)
        graph[name] = out
    return graph


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state, stack = {}, []

    def visit(v):
        state[v] = 1
        stack.append(v)
        for w in sorted(graph[v]):
            if state.get(w) == 1:
                return stack[stack.index(w):] + [w]
            if w not in state and (c := visit(w)):
                return c
        state[v] = 2
        stack.pop()
        return None

    for v in sorted(graph):
        if v not in state and (c := visit(v)):
            return c
    return None


def floor_of(module: str) -> int:
    """(layer, floor inside jobs/): the longest prefix in JOB_FLOORS decides."""
    layer = LAYERS.index(module.split(".")[0])
    if layer < 2:
        return layer * 100
    best = max(((len(p), i) for i, ps in enumerate(JOB_FLOORS) for p in ps if module == p or module.startswith(p + ".")),
               default=None)
    assert best is not None or module == "jobs", f"{module} has no floor in JOB_FLOORS: place it there and in ARCHITECTURE.md"
    return 200 + (best[1] if best else 0)


def test_landscape_is_free_of_orchestration():
    assert not _imports("landscape") & {"ray", "zarr", "matplotlib", "cluster", "jobs"}


def test_cluster_does_not_import_jobs():
    assert "jobs" not in _imports("cluster")


def test_no_import_circles():
    assert _cycle(import_graph()) is None, " -> ".join(_cycle(import_graph()))


def test_imports_point_downward_only():
    upward = [f"{a} -> {b}" for a, deps in import_graph().items() for b in deps if floor_of(b) > floor_of(a)]
    assert not upward, "imports pointing up a floor: " + "; ".join(sorted(upward))


def test_the_checks_can_fail():
    """The two checks above find what they are for."""
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()}) == ["a", "b", "c", "a"]
    assert floor_of("jobs.cli") > floor_of("jobs.curves.animate") > floor_of("jobs.scan.problem") > floor_of("jobs.curves.slices")
    assert floor_of("jobs.specs.scan") > floor_of("cluster.store") > floor_of("landscape.evaluator")
