"""The live page's HTTP server: 127.0.0.1 only, the page, plotly's JavaScript, the state as JSON,
POST /stop to end it. Standard library only (http.server), one thread per request."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from jobs.plot.html import colorscale
from jobs.plot.options import PlotOptions, resolved
from jobs.plot.style import CMAP

from .state import Watch

PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>landscape view</title>
<script src="plotly.js"></script>
<style>body{font-family:sans-serif;margin:1em 2em} #progress{font-size:110%;margin:.5em 0}</style></head>
<body><h1 id="title" style="font-size:130%">waiting for the result...</h1>
<div id="progress">-</div><button id="stop">Stop the viewer</button>
<div id="map" style="height:640px" data-draws="0"></div>
<script>
const INTERVAL = __INTERVAL__, COLORS = __COLORS__;
const el = document.getElementById('map'), progress = document.getElementById('progress');
let timer = null;
function render(s) {
  document.getElementById('title').innerText = s.title;
  progress.innerText = s.progress;
  progress.dataset.done = s.done; progress.dataset.total = s.total; progress.dataset.status = s.status;
  if (s.z === null) return;
  const bar = {title: {text: s.label}, tickvals: s.scale.tickvals, ticktext: s.scale.ticktext};
  const trace = {type: 'heatmap', x: s.x, y: s.y, z: s.z, text: s.value, zmin: s.scale.zmin, zmax: s.scale.zmax,
                 colorscale: COLORS, colorbar: bar, hoverongaps: false,
                 hovertemplate: s.xlabel + ': %{x:.4g}<br>' + s.ylabel + ': %{y:.4g}<br>' + s.label + ': %{text:.4g}<extra></extra>'};
  Plotly.react(el, [trace], {xaxis: {title: {text: s.xlabel}}, yaxis: {title: {text: s.ylabel}}, margin: {t: 20}},
               {displaylogo: false});
  el.dataset.shown = s.shown; el.dataset.draws = Number(el.dataset.draws) + 1;
}
async function tick() {
  try {
    const s = await (await fetch('state.json', {cache: 'no-store'})).json();
    if (s.error) progress.innerText = s.error; else render(s);
  } catch (e) { progress.innerText = 'the viewer has stopped'; progress.dataset.status = 'stopped'; return; }
  timer = setTimeout(tick, INTERVAL);
}
document.getElementById('stop').onclick = async () => {
  clearTimeout(timer);
  try { await fetch('stop', {method: 'POST'}); } catch (e) {}
  progress.innerText = 'the viewer has stopped'; progress.dataset.status = 'stopped';
};
tick();
</script></body></html>
"""


def make_server(result: str, port: int = 0, interval: float = 1.0, opts: PlotOptions | None = None) -> ThreadingHTTPServer:
    """A server bound to 127.0.0.1:`port` (0: any free port); call serve_forever()."""
    from plotly.offline import get_plotlyjs

    opts = resolved(opts)
    watch, lock = Watch(result, opts), threading.Lock()
    page = (PAGE.replace("__INTERVAL__", str(int(interval * 1000)))
            .replace("__COLORS__", json.dumps(colorscale(opts.cmap or CMAP)))).encode()
    js = get_plotlyjs().encode()

    class Handler(BaseHTTPRequestHandler):
        def _send(self, body: bytes, kind: str, code: int = 200):
            self.send_response(code)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self):  # noqa: N802 (http.server's name)
            path = self.path.split("?")[0]
            if path == "/":
                self._send(page, "text/html; charset=utf-8")
            elif path == "/plotly.js":
                self._send(js, "text/javascript")
            elif path == "/state.json":
                try:
                    with lock:  # one read of the result at a time
                        state = watch.snapshot()
                except Exception as e:  # a result being created or rewritten: say so, keep serving
                    state = {"error": f"cannot read {result}: {(str(e).splitlines() or [type(e).__name__])[0]}"}
                self._send(json.dumps(state).encode(), "application/json")
            elif path == "/favicon.ico":  # browsers ask; no icon, and no error in the console
                self.send_response(204)
                self.end_headers()
            else:
                self._send(b"not found", "text/plain", 404)

        def do_POST(self):  # noqa: N802
            if self.path == "/stop":
                self._send(b"stopped", "text/plain")
                threading.Thread(target=self.server.shutdown, daemon=True).start()
            else:
                self._send(b"not found", "text/plain", 404)

        def log_message(self, *args):  # quiet: the command prints its own lines
            pass

    return ThreadingHTTPServer(("127.0.0.1", port), Handler)
