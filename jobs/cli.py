"""The `landscape` command line. Bad input: one line on stderr, exit status 2.

Commands live in modules listed in MODULES; each has `add_parsers(sub)` (its
subcommands, with `set_defaults(run=...)`). Ctrl-C exits 130 and SIGTERM 143,
each with one line; a result being written records how its run ended.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys

from cluster import interrupts
from landscape.errors import LandscapeError, Terminated

# Modules that add subcommands, in the order `landscape --help` lists them.
MODULES = ("jobs.commands", "jobs.service.remote")
MODULES += ("jobs.health.commands",)  # gradients, lr-scan
MODULES += ("jobs.curvature.commands",)  # hessian, sharpness
MODULES += ("jobs.curves.commands",)
MODULES += ("jobs.export.commands",)  # export
MODULES += ("jobs.view.commands",)  # view


class _OneLineParser(argparse.ArgumentParser):
    """argparse, but a usage error is one line naming the command, then exit 2."""

    def error(self, message: str):
        sys.stderr.write(f"landscape: error: {self.prog.removeprefix('landscape').strip() or 'landscape'}: {message} (see `{self.prog} --help`)\n")
        sys.exit(2)


def parser() -> argparse.ArgumentParser:
    p = _OneLineParser(prog="landscape", description="Loss-landscape grid scans on Ray, into Zarr.")
    from landscape import __version__

    p.add_argument("--version", action="version", version=f"landscape {__version__}")
    sub = p.add_subparsers(dest="command", required=True, parser_class=_OneLineParser)
    for name in MODULES:
        importlib.import_module(name).add_parsers(sub)
    return p


def _os_error_line(e: OSError) -> str:
    where = f": {e.filename}" if getattr(e, "filename", None) else ""
    return f"{e.strerror or type(e).__name__}{where}"


def main(argv: list[str] | None = None) -> int:
    installed = interrupts.install()  # SIGTERM (`landscape stop`, `ray job stop`) ends like Ctrl-C
    try:
        try:
            args = parser().parse_args(argv)
        except SystemExit as e:  # usage errors (one line, printed), --help, --version
            return int(e.code or 0)
        return int(args.run(args) or 0)
    except LandscapeError as e:
        print(f"landscape: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("landscape: interrupted; run the same command again to resume", file=sys.stderr)
        return 130
    except Terminated:
        print("landscape: stopped (SIGTERM); run the same command again to resume", file=sys.stderr)
        return 143
    except BrokenPipeError:  # `landscape schema | head`: the reader has what it wanted; say nothing
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # Python's own flush at exit would fail too
        return 141  # as a shell reports a command ended by SIGPIPE
    except OSError as e:  # a file system refused (permissions, a full disk): not a bug, one line
        print(f"landscape: error: {_os_error_line(e)}", file=sys.stderr)
        return 2
    finally:
        if installed:
            interrupts.uninstall()


if __name__ == "__main__":
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    sys.exit(main())
