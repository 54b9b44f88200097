"""Bad input to `landscape gradients` and `landscape lr-scan`: one line naming the field, exit 2, nothing written."""

from __future__ import annotations

import pytest
import yaml

from jobs.cli import main

from .one_line import run_bad

DEEP = {"kind": "deep_mlp", "options": {"depth": 2, "width": 8, "activation": "tanh"}}
DATA = {"kind": "digits", "subset": 64}
GRADIENTS = {"name": "g", "model": DEEP, "data": DATA, "record": "step", "epochs": 1}
LR_SCAN = {"name": "s", "model": DEEP, "data": DATA, "learning_rates": {"lo": 1e-3, "hi": 1.0, "num": 4}, "epochs": 1}


def _opts(**o) -> dict:
    return {"kind": "deep_mlp", "options": {**DEEP["options"], **o}}


NO_WEIGHTS = {"kind": "import", "factory": "tests.health_factories:bias_only"}

# (id, command, base spec, changes, what the one line must say)
CASES = [
    ("lo>=hi", "lr-scan", LR_SCAN, {"learning_rates": {"lo": 1.0, "hi": 0.1}}, ["learning_rates", "lo 1 >= hi 0.1"]),
    ("lo==hi", "lr-scan", LR_SCAN, {"learning_rates": {"lo": 0.1, "hi": 0.1}}, ["learning_rates", "lo must be below hi"]),
    ("lo=0", "lr-scan", LR_SCAN, {"learning_rates": {"lo": 0, "hi": 1.0}}, ["learning_rates.lo", "> 0"]),
    ("hi<0", "lr-scan", LR_SCAN, {"learning_rates": {"lo": 1e-3, "hi": -1.0}}, ["learning_rates.hi", "> 0"]),
    ("lo=nan", "lr-scan", LR_SCAN, {"learning_rates": {"lo": float("nan"), "hi": 1.0}}, ["learning_rates.lo", "finite"]),
    ("range lo>=hi", "lr-scan", LR_SCAN, {"range_test": {"lo": 2.0, "hi": 1.0}}, ["range_test", "lo must be below hi"]),
    ("range lo>=default hi", "lr-scan", LR_SCAN, {"range_test": {"lo": 5.0}}, ["range_test", "lo must be below hi"]),
    ("gradients lr<=0", "gradients", GRADIENTS, {"lr": 0}, ["lr", "a learning rate is a number > 0", "got 0"]),
    ("epochs 0 scan", "lr-scan", LR_SCAN, {"epochs": 0}, ["epochs", "needs epochs >= 1"]),
    ("depth 0", "gradients", GRADIENTS, {"model": _opts(depth=0)}, ["model.options", "depth", ">= 1"]),
    ("depth 0 scan", "lr-scan", LR_SCAN, {"model": _opts(depth=0)}, ["model.options", "depth", ">= 1"]),
    ("depth 2.5", "gradients", GRADIENTS, {"model": _opts(depth=2.5)}, ["model.options", "depth"]),
    ("activation", "gradients", GRADIENTS, {"model": _opts(activation="gelu")}, ["model.options", "activation", "relu, tanh, sigmoid", "'gelu'"]),
    ("init", "lr-scan", LR_SCAN, {"model": _opts(init="he")}, ["model.options", "init", "kaiming_normal", "'he'"]),
    ("init_gain", "gradients", GRADIENTS, {"model": _opts(init_gain=0)}, ["model.options", "init_gain", "> 0"]),
    ("unknown option", "gradients", GRADIENTS, {"model": _opts(dropout=0.1)}, ["model.options", "'dropout'", "valid options"]),
    ("no weight matrix", "lr-scan", LR_SCAN, {"model": NO_WEIGHTS}, ["model:", "weight matrix", "shift"]),
    ("no weight matrix g", "gradients", GRADIENTS, {"model": NO_WEIGHTS}, ["model:", "weight matrix"]),
    ("track", "lr-scan", LR_SCAN, {"track": "hidden.9.weight"}, ["track", "'hidden.9.weight'", "hidden.0.weight"]),
    ("record missing", "gradients", {k: v for k, v in GRADIENTS.items() if k != "record"}, {}, ["record", "required"]),
    ("record value", "gradients", GRADIENTS, {"record": "batch"}, ["record", "'step' or 'epoch'"]),
    ("every 0", "gradients", GRADIENTS, {"every": 0}, ["every", "greater than 0"]),
    ("collapse_ratio", "lr-scan", LR_SCAN, {"collapse_ratio": 1.5}, ["collapse_ratio", "less than 1"]),
    ("tolerance", "lr-scan", LR_SCAN, {"bisect": {"tolerance": 0}}, ["bisect.tolerance", "greater than 0"]),
    ("typo", "lr-scan", LR_SCAN, {"epoch": 3}, ["epoch", "unknown field"]),
]


# Every case as given, and each lr-scan case again with --bisect (an lr-scan option only).
RUNS = [(c[0], *c[1:], False) for c in CASES] + [(c[0] + "-bisect", *c[1:], True) for c in CASES if c[1] == "lr-scan"]


@pytest.mark.parametrize("cmd,base,changes,needles,bisect", [r[1:] for r in RUNS], ids=[r[0] for r in RUNS])
def test_bad_input_is_one_line_exit_2_and_writes_nothing(cmd, base, changes, needles, bisect, tmp_path, capsys):
    spec = tmp_path / "spec.yaml"
    spec.write_text(yaml.safe_dump({**base, **changes}))
    out = tmp_path / "out.zarr"
    argv = [cmd, str(spec), "--out", str(out)] + (["--bisect"] if bisect else [])
    run_bad(capsys, argv, *needles)
    assert not out.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["spec.yaml"]  # no plots, no result, nothing
    if "record" in base:  # (without `record` the file reads as a training spec)
        assert main(["validate", str(spec)]) == 2  # validate finds the same problem
        assert needles[0] in capsys.readouterr().err


def test_schema_lists_the_new_kinds(capsys):
    for kind, field in (("gradients", "record"), ("lr-scan", "learning_rates")):
        assert main(["schema", "--kind", kind]) == 0
        assert f'"{field}"' in capsys.readouterr().out


@pytest.mark.parametrize("name", ["gradients_deep_tanh", "gradients_tanh116_init", "lr_scan_tanh116"])
def test_example_specs_validate(name, capsys):
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "jobs" / "examples" / f"{name}.yaml"
    assert main(["validate", str(path)]) == 0
    assert "valid " + ("lr-scan" if name.startswith("lr") else "gradients") + " spec" in capsys.readouterr().out
