"""The check every bad-input test makes: exit status 2 and exactly one line, `landscape: error: ...`."""

from __future__ import annotations

from jobs.cli import main


def assert_one_line(code: int, err: str, needles=(), started: bool = False) -> str:
    """`started`: the run got going before it failed, so progress lines may come first;
    the error is still one line, and the last."""
    err = err.strip()
    assert code == 2, f"exit {code}: {err}"
    assert "Traceback" not in err and "\x1b[" not in err, err  # no traceback, no colour codes
    lines = err.splitlines()
    errors = [ln for ln in lines if ln.startswith("landscape: error: ")]
    assert len(errors) == 1 and lines[-1] == errors[0] and (started or len(lines) == 1), err
    for n in needles:
        assert n in errors[0], f"{n!r} not in {errors[0]!r}"
    return errors[0]


def run_bad(capsys, argv: list[str], *needles: str, started: bool = False) -> str:
    """Run the CLI in this process on bad input; the one error line."""
    code = main(argv)
    return assert_one_line(code, capsys.readouterr().err, needles, started)
