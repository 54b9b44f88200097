"""A scan's progress as Ray metrics (Prometheus / Ray dashboard), tagged with the scan's name.

Gauges: landscape_tiles_done and landscape_tiles_total (the whole scan, tiles
stored before a resume included), landscape_evals_per_second (this run's
smoothed speed), landscape_actor_deaths and landscape_tile_retries (this run).
Counter: landscape_points (grid points evaluated; `rate()` of it is the
current speed). Prometheus shows them with Ray's `ray_` prefix.

Fail soft: where a metric cannot be made or recorded, the scan goes on
without metrics (one warning); the last values stay readable in `values`.
"""

from __future__ import annotations

import logging

log = logging.getLogger(__name__)

TAG = "scan"
GAUGES = {
    "tiles_done": "tiles stored in the result, resumed ones included",
    "tiles_total": "tiles in the whole scan",
    "evals_per_second": "grid points per second in this run, smoothed over recent results (warm-up excluded)",
    "actor_deaths": "actors lost in this run (their tiles were re-queued)",
    "tile_retries": "tile evaluations repeated in this run",
}
COUNTER = ("points", "grid points evaluated")

# One metric object per name and process: several scans in one process share them
# and tell themselves apart by the `scan` tag.
_made: dict[str, object] = {}


def _metric(kind: str, name: str, doc: str):
    if name not in _made:
        from ray.util import metrics

        _made[name] = getattr(metrics, kind)(f"landscape_{name}", description=doc, tag_keys=(TAG,))
    return _made[name]


class ScanMetrics:
    def __init__(self, scan: str):
        self.tags = {TAG: scan}
        self.values: dict[str, float] = {}
        self.points = 0
        self._live = True

    def update(self, **values: float) -> None:
        """Set gauges by short name (`tiles_done=3, ...`); unknown names are a bug."""
        unknown = set(values) - set(GAUGES)
        if unknown:
            raise KeyError(f"unknown scan metric(s): {sorted(unknown)}")
        self.values.update({k: float(v) for k, v in values.items()})
        self._record(lambda: [_metric("Gauge", k, GAUGES[k]).set(float(v), tags=self.tags) for k, v in values.items()])

    def add_points(self, n: int) -> None:
        self.points += n
        if n > 0:
            self._record(lambda: _metric("Counter", *COUNTER).inc(n, tags=self.tags))

    def _record(self, action) -> None:
        if not self._live:
            return
        try:
            action()
        except Exception as e:  # metrics are a view on the scan, never a reason to stop it
            self._live = False
            log.warning("Ray metrics are unavailable (%s: %s); the scan goes on without them", type(e).__name__, e)
