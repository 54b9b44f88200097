"""`landscape view RESULT [--port N] [--interval S]`."""

from __future__ import annotations

import sys


def _view(args) -> int:
    from cluster.store import ResultStore
    from jobs.plot.options import options_from_args
    from landscape.errors import Terminated

    from .server import make_server

    if not 0.1 <= args.interval <= 3600:
        from landscape.errors import SpecError

        raise SpecError(f"--interval must be from 0.1 to 3600 seconds, got {args.interval}")
    ResultStore.open(args.result)  # a missing or foreign result: one line, before serving anything
    opts = options_from_args(args)
    server = make_server(args.result, args.port, args.interval, opts)
    host, port = server.server_address[:2]
    print(f"view: http://{host}:{port}/ (Stop on the page, or Ctrl-C, ends it)", flush=True)
    try:
        server.serve_forever(poll_interval=0.2)
    except (KeyboardInterrupt, Terminated):
        pass
    finally:
        server.server_close()
    print("view: stopped", file=sys.stderr)
    return 0


def add_parsers(sub) -> None:
    from jobs.common.flags import add_plot_flags

    v = sub.add_parser("view", help="serve, on 127.0.0.1, a page that redraws a (running) scan's heatmap as tiles land")
    v.add_argument("result")
    v.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (default: any free one)")
    v.add_argument("--interval", type=float, default=1.0, help="seconds between redraws")
    add_plot_flags(v, static=False)
    v.set_defaults(run=_view)
