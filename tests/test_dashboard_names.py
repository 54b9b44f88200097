"""What the Ray dashboard shows of a scan: actors and tasks carry the scan's name; the Grafana
dashboard under deploy/ parses and plots only metrics that cluster/metrics.py defines."""

from __future__ import annotations

import json
import re

import pytest

from cluster.driver import run_work
from cluster.metrics import COUNTER, GAUGES
from cluster.session import ActorRequest
from cluster.tiling import iter_tiles

from .conftest import REPO

GRAFANA = REPO / "deploy" / "grafana" / "dashboards" / "landscape_scans.json"


class _Echo:
    """Returns what it is given, and the named actors it can see in its namespace."""

    def __init__(self, problem):
        self.offset = problem

    def evaluate(self, i: int):
        import ray

        return i + self.offset, sorted(ray.util.list_named_actors())


@pytest.mark.ray
def test_actors_and_tasks_carry_the_scans_name(ray_cluster):
    tiles = list(iter_tiles((3, 5), (1, 5)))  # three tiles
    seen = {}

    def on_result(tile, result, stats):
        value, actors = result
        seen[tile.name] = (value, actors)

    run_work(10, _Echo, tiles, len(tiles), lambda t: (t.index[0],), on_result, ActorRequest(2, 0.5, 0), label="my-scan")
    assert {k: v[0] for k, v in seen.items()} == {t.name: t.index[0] + 10 for t in tiles}
    names = {a for _, actors in seen.values() for a in actors}
    assert names and all(re.fullmatch(r"my-scan/actor-[01]-[0-9a-f]{6}", a) for a in names), names
    # A second run of the same scan names its actors afresh (names are unique per namespace).
    run_work(10, _Echo, tiles, len(tiles), lambda t: (t.index[0],), on_result, ActorRequest(1, 0.5, 0), label="my-scan")
    assert {a for _, actors in seen.values() for a in actors}.isdisjoint(names)


def _exprs(panel) -> list[str]:
    return [t["expr"] for t in panel.get("targets", [])]


def test_grafana_dashboard_plots_only_the_scans_metrics():
    board = json.loads(GRAFANA.read_text())
    assert board["title"] and board["uid"] and board["panels"]
    known = {f"ray_landscape_{n}" for n in GAUGES} | {f"ray_landscape_{COUNTER[0]}_total"}
    used = set()
    for panel in board["panels"]:
        exprs = _exprs(panel)
        assert exprs, panel["title"]
        for e in exprs:
            used |= set(re.findall(r"ray_landscape_\w+", e))
            assert e.count('{scan=~"$scan"}') == len(re.findall(r"ray_landscape_\w+", e)), e  # every panel follows the scan picker
    assert used and used <= known, used - known
    assert {"ray_landscape_tiles_done", "ray_landscape_points_total"} <= used
    (var,) = [v for v in board["templating"]["list"] if v["name"] == "scan"]
    assert "ray_landscape_tiles_total" in json.dumps(var["query"])
    provisioning = (REPO / "deploy" / "grafana" / "provisioning" / "dashboards" / "landscape.yml").read_text()
    assert "/dashboards" in provisioning
