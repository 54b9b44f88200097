"""Bad inputs that need more than the case tables check: YAML bombs refused fast and small (a fresh
process's time and peak memory), spec encodings accepted, factories that exit, parse sys.argv, sleep or
return huge Datasets, a training that diverges, and actors that cannot be placed."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
import yaml

from jobs.cli import main
from jobs.specs import read_yaml
from landscape import user_calls
from landscape.data import from_factory, subsample

from .bad_input_cases_hostile import _alias_chain, _laughs
from .conftest import REPO, TINY_DATA, TINY_MODEL
from .one_line import run_bad

BOMBS = {
    "laughs in data.kwargs": "name: x\ndata:\n  kind: import\n  factory: m:f\n  kwargs:\n" + textwrap.indent(_laughs(), "    ") + "\n",
    "laughs at the top": _laughs() + "\n",
    "recursive alias": "name: x\nmodel: &m {kind: mlp, options: {again: *m}}\n",
    "50,000-deep flow nesting": "name: " + "[" * 50_000 + "]" * 50_000 + "\n",
    "50,000-deep flow mappings": "name: " + "{a: " * 50_000 + "1" + "}" * 50_000 + "\n",
    "400-deep block nesting": "name: x\nmodel:\n" + "".join("  " * (i + 1) + f"k{i}:\n" for i in range(400)),
    "an alias chain": _alias_chain(3000) + "\n",
    "400,000 values in one list": "name: [" + "1," * 400_000 + "1]\n",
}


def test_yaml_bombs_are_refused_in_a_second_without_memory(tmp_path):
    """Each in a fresh process after a harmless warm-up call: wall time of the refusal and growth of the peak RSS."""
    paths = []
    for i, text in enumerate(BOMBS.values()):
        paths.append(tmp_path / f"bomb{i}.yaml")
        paths[-1].write_text(text)
    (tmp_path / "plain.yaml").write_text("name: x\n")
    probe = textwrap.dedent(f"""
        import json, resource, sys, time
        from jobs.cli import main
        main(["validate", {str(tmp_path / "plain.yaml")!r}])  # imports everything a refusal needs
        base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        rows = []
        for path in sys.argv[1:]:
            t0 = time.perf_counter()
            code = main(["validate", path])
            rows.append((code, time.perf_counter() - t0, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - base))
        print(json.dumps(rows))
    """)
    done = subprocess.run([sys.executable, "-c", probe, *map(str, paths)], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    rows = json.loads(done.stdout.strip().splitlines()[-1])
    errors = [ln for ln in done.stderr.splitlines() if ln.startswith("landscape: error: ")]
    assert len(errors) == len(BOMBS) + 1 and "Traceback" not in done.stderr, done.stderr  # +1: the warm-up's refusal
    for name, (code, seconds, grown_kib), line in zip(BOMBS, rows, errors[1:]):
        assert code == 2, (name, line)
        assert seconds < 2.0, f"{name}: {seconds:.2f} s"  # a billion laughs used to run for minutes
        assert grown_kib < 64 * 1024, f"{name}: peak RSS grew by {grown_kib / 1024:.0f} MiB"  # and take 5 GB
    assert "expands to more than 100,000 values" in errors[1] and "contains it" in errors[3]
    assert all("nested more than 64 levels deep" in e for e in errors[4:8]), errors[4:8]
    assert "holds more than 100,000 values" in errors[8]


@pytest.mark.parametrize("encoding", ["utf-8-sig", "utf-16", "utf-32"])
def test_a_spec_in_utf8_or_with_a_byte_order_mark_is_read(tmp_path, encoding):
    text = "name: kätzchen-плоскость\ngrid: {x: {min: -1, max: 1, num: 3}}\nmodel: &m {kind: mlp}\nagain: *m\n"
    path = tmp_path / "s.yaml"
    path.write_bytes(text.encode(encoding))
    assert text.encode(encoding)[:2] in (b"\xef\xbb", b"\xff\xfe")  # the BOM is there
    assert read_yaml(path) == yaml.safe_load(text)


def _train_spec(tmp_path: Path, **over) -> Path:
    d = {"name": "t", "model": TINY_MODEL, "data": TINY_DATA, "epochs": 2, "batch_size": 32, "output": str(tmp_path / "run"), **over}
    path = tmp_path / "train.yaml"
    path.write_text(yaml.safe_dump(d))
    return path


IMPORT_DATA = {"kind": "import", "factory": "tests.bad_factories:data_ok"}


def test_a_factory_parsing_landscapes_argv_is_named_as_the_one_that_failed(tmp_path, capsys, monkeypatch):
    spec = _train_spec(tmp_path, model={"kind": "import", "factory": "tests.bad_factories:model_parses_argv"}, data=IMPORT_DATA)
    monkeypatch.setattr(sys, "argv", ["landscape", "train", str(spec)])
    run_bad(capsys, ["train", str(spec)], "model.factory 'tests.bad_factories:model_parses_argv' exited (sys.exit(2))",
            "train_my_model: error: unrecognized arguments", "the factory's message, not landscape's",
            "sees landscape's own arguments", "must return an nn.Module, not exit")
    assert not (tmp_path / "run").exists()


def test_a_slow_factory_says_what_is_waited_on_and_then_stops_saying_it(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(user_calls, "SLOW_NOTICE_S", 0.3)
    spec = _train_spec(tmp_path, model={"kind": "import", "factory": "tests.bad_factories:model_sleeps", "options": {"seconds": 1.0}},
                       data=IMPORT_DATA)
    assert main(["validate", str(spec)]) == 0
    err = capsys.readouterr().err
    waits = [ln for ln in err.splitlines() if ln.startswith("still waiting for model.factory 'tests.bad_factories:model_sleeps' (")]
    assert 1 <= len(waits) <= 6, err  # at 0.3 and 0.6 s of each call (doubling intervals)
    import time

    time.sleep(0.8)  # the notices ended with the call
    assert "still waiting" not in capsys.readouterr().err


def test_still_waiting_is_silent_for_quick_calls(capsys):
    with user_calls.still_waiting("nothing"):
        pass
    assert capsys.readouterr().err == ""


def test_a_factory_that_prints_and_returns_keeps_its_output():
    import io

    def chatty():
        print("loading shards", file=sys.stderr)
        return 5

    real, sys.stderr = sys.stderr, io.StringIO()
    try:
        assert user_calls.call_factory(chatty, {}, "f", RuntimeError, "a number", "kwargs") == 5
        assert sys.stderr.getvalue() == "loading shards\n"
    finally:
        sys.stderr = real


class _Counted(torch.utils.data.Dataset):
    reads: list[int] = []

    def __len__(self):
        return 50

    def __getitem__(self, i):
        _Counted.reads.append(i)
        return torch.tensor([float(i), -float(i)]), i % 3


def counted_dataset():
    return _Counted()


def test_a_factorys_dataset_is_read_only_for_its_subset_and_gives_the_subset_of_the_whole(monkeypatch):
    monkeypatch.syspath_prepend(str(REPO))
    _Counted.reads.clear()
    x, y, _ = from_factory("tests.test_hostile_inputs:counted_dataset", {}, subset=7, seed=5)
    assert len(_Counted.reads) == 7
    whole_x = torch.tensor([[float(i), -float(i)] for i in range(50)])
    want_x, want_y = subsample(whole_x, torch.arange(50) % 3, 7, 5)
    torch.testing.assert_close(x, want_x)
    torch.testing.assert_close(y, want_y)


def test_a_diverging_training_ends_in_one_line_and_saves_nothing_non_finite(tmp_path, capsys):
    spec = _train_spec(tmp_path, lr=1e12, save_every=2)
    line = run_bad(capsys, ["train", str(spec)], "training diverged in", "lower lr", "train.json marks the run unfinished", started=True)
    run = tmp_path / "run"
    names = sorted(p.name for p in run.iterdir())
    assert "epoch_000.pt" in names and "epoch_002.pt" not in names, (names, line)
    assert json.loads((run / "train.json").read_text())["finished"] is False  # the record says: unfinished
    for p in run.glob("*.pt"):
        assert all(torch.isfinite(v).all() for v in torch.load(p, weights_only=True).values())


def test_an_actor_asking_for_more_cpus_than_the_cluster_has_names_cpus_per_actor(ray_cluster, tiny_run, tmp_path, capsys):
    from .conftest import scan_spec_dict

    d = scan_spec_dict(tiny_run, cluster={"cpus_per_actor": 64})
    (tmp_path / "s.yaml").write_text(yaml.safe_dump(d))
    out = tmp_path / "o.zarr"
    run_bad(capsys, ["run", str(tmp_path / "s.yaml"), "--no-plot", "--out", str(out)],
            "lower cluster.cpus_per_actor (64) to at most the cluster's 2 CPU(s)", started=True)
    if out.exists():  # created before the actors were planned: it must not look finished
        from cluster.store import ResultStore

        assert ResultStore.open(str(out)).meta["status"] != "complete"


def test_a_diverging_curve_training_ends_in_one_line_and_saves_no_curve(tiny_run, tmp_path, capsys):
    d = {"name": "c", "model": TINY_MODEL, "data": TINY_DATA, "epochs": 3, "lr": 1e12, "momentum": 0.99, "loss": "mse",
         "endpoints": [str(tiny_run / "epoch_001.pt"), str(tiny_run / "epoch_003.pt")], "curve": {"kind": "bezier"}}
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(d))
    out = tmp_path / "curve"
    run_bad(capsys, ["train-curve", str(tmp_path / "c.yaml"), "--out", str(out)], "curve training diverged in epoch 1",
            "lower lr", "curve.json marks the run unfinished", started=True)
    assert json.loads((out / "curve.json").read_text())["finished"] is False and not list(out.glob("epoch_*.pt"))
