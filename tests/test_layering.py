"""landscape/ is math only; imports point downward: jobs -> cluster -> landscape."""

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _imports(folder: str) -> set[str]:
    found = set()
    for path in (REPO / folder).rglob("*.py"):
        for m in re.finditer(r"^\s*(?:from|import)\s+([A-Za-z_]\w*)", path.read_text(), re.M):
            found.add(m.group(1))
    return found


def test_landscape_is_free_of_orchestration():
    assert not _imports("landscape") & {"ray", "zarr", "matplotlib", "cluster", "jobs"}


def test_cluster_does_not_import_jobs():
    assert "jobs" not in _imports("cluster")
