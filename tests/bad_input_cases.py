"""The bad inputs of tests/test_bad_inputs.py: every scan-spec case (run through `landscape run` and
`landscape validate`) and every other command's, each (id, what to write or run, what the one line must name)."""

from __future__ import annotations

import copy
import pickle
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch
import yaml

from .conftest import TINY_DATA, TINY_MODEL, scan_spec_dict

IMPORT_MODEL = {"kind": "import", "factory": "tests.bad_factories:model_three_outputs"}


@dataclass
class Ctx:
    tmp: Path
    run: Path  # the tiny MLP's checkpoints
    plane: Path  # a finished plane result (not to be changed by any case)
    line: Path  # a finished line result

    def spec(self, d: dict | str, name: str = "spec.yaml") -> str:
        p = self.tmp / name
        p.write_text(d if isinstance(d, str) else yaml.safe_dump(d))
        return str(p)

    def base(self, **over) -> dict:
        return copy.deepcopy(scan_spec_dict(self.run, **over))

    def ckpt(self, obj, name: str = "bad.pt") -> str:
        p = self.tmp / name
        torch.save(obj, p)
        return str(p)

    def state(self, **changes) -> dict:
        s = torch.load(self.run / "epoch_003.pt", weights_only=True)
        s.update(changes)
        return s



def _with(d: dict, path: str, value) -> dict:
    """d with the dotted field `path` set (a new dict); value None deletes it."""
    d = copy.deepcopy(d)
    *parents, leaf = path.split(".")
    cur = d
    for p in parents:
        cur = cur.setdefault(p, {})
    if value is None:
        cur.pop(leaf, None)
    else:
        cur[leaf] = value
    return d



# -- scan specs: (id, make(ctx) -> spec dict or YAML text, needles) ---------------------------------

G = {"x": {"min": -1.0, "max": 1.0, "num": 5}, "y": {"min": -1.0, "max": 1.0, "num": 4}}
SPEC_CASES: list[tuple[str, Callable[[Ctx], dict | str], list[str]]] = [
    ("misspelled top-level field", lambda c: {**c.base(), "gird": G}, ["gird", "unknown field"]),
    ("misspelled nested field", lambda c: _with(c.base(), "grid.x.nmu", 3), ["grid.x.nmu", "unknown field"]),
    ("unknown slice kind", lambda c: _with(c.base(), "slice.kind", "random_plan"), ["slice", "random_plan"]),
    ("missing slice", lambda c: _with(c.base(), "slice", None), ["slice", "required field is missing"]),
    ("missing name", lambda c: _with(c.base(), "name", None), ["name", "required field is missing"]),
    ("name with a slash", lambda c: _with(c.base(), "name", "a/b"), ["name", "ASCII letters", "holds '/'"]),
    ("empty name", lambda c: _with(c.base(), "name", ""), ["name"]),
    ("num zero", lambda c: _with(c.base(), "grid.x.num", 0), ["grid.x.num"]),
    ("num negative", lambda c: _with(c.base(), "grid.x.num", -3), ["grid.x.num"]),
    ("num a word", lambda c: _with(c.base(), "grid.x.num", "many"), ["grid.x.num"]),
    ("num fractional", lambda c: _with(c.base(), "grid.x.num", 2.5), ["grid.x.num"]),
    ("min NaN", lambda c: _with(c.base(), "grid.x.min", float("nan")), ["grid.x.min", "finite"]),
    ("max inf", lambda c: _with(c.base(), "grid.x.max", float("inf")), ["grid.x.max", "finite"]),
    ("min -inf", lambda c: _with(c.base(), "grid.y.min", float("-inf")), ["grid.y.min", "finite"]),
    ("max 1e308", lambda c: _with(c.base(), "grid.x.max", 1e308), ["grid.x.max", "beyond"]),
    ("min -1e7", lambda c: _with(c.base(), "grid.x.min", -1e7), ["grid.x.min", "beyond"]),
    ("reversed range", lambda c: _with(c.base(), "grid.y", {"min": 1, "max": -1, "num": 5}), ["grid.y", "reversed"]),
    ("empty range", lambda c: _with(c.base(), "grid.y", {"min": 1, "max": 1, "num": 5}), ["grid.y", "empty range"]),
    ("num 1 with min != max", lambda c: _with(c.base(), "grid.x", {"min": 0, "max": 1, "num": 1}), ["grid.x", "num: 1"]),
    ("plane without y", lambda c: _with(c.base(), "grid.y", None), ["grid.y is required"]),
    ("line with y", lambda c: _with(c.base(), "slice.kind", "random_line"), ["remove grid.y"]),
    ("31623^2 points", lambda c: _with(c.base(), "grid", {"x": {"min": -1, "max": 1, "num": 31623}, "y": {"min": -1, "max": 1, "num": 31623}}),
     ["1,000,014,129 points", "grid.max_points"]),
    ("a line of 1e9 points", lambda c: {**_with(c.base(), "slice.kind", "random_line"), "grid": {"x": {"min": -1, "max": 1, "num": 10**9}}},
     ["1,000,000,000 points", "grid.max_points"]),
    ("max_points zero", lambda c: _with(c.base(), "grid.max_points", 0), ["grid.max_points"]),
    ("tiles too small for the grid", lambda c: {**c.base(tile=1), "grid": {"x": {"min": -1, "max": 1, "num": 2000}, "y": {"min": -1, "max": 1, "num": 2000}}},
     ["4,000,000 tiles", "larger tile"]),
    ("tile zero", lambda c: c.base(tile=0), ["tile", "positive"]),
    ("tile of one number in a list", lambda c: c.base(tile=[3]), ["tile"]),
    ("tile a word", lambda c: c.base(tile="big"), ["tile"]),
    ("unknown precision", lambda c: c.base(precision="fp16"), ["precision"]),
    ("unknown loss", lambda c: c.base(loss="hinge"), ["loss"]),
    ("data_chunk zero", lambda c: c.base(data_chunk=0), ["data_chunk"]),
    ("tolerance zero", lambda c: _with(c.base(), "data.tolerance", 0), ["data.tolerance", "between 0 and 1"]),
    ("tolerance negative", lambda c: _with(c.base(), "data.tolerance", -0.01), ["data.tolerance", "between 0 and 1"]),
    ("tolerance NaN", lambda c: _with(c.base(), "data.tolerance", float("nan")), ["data.tolerance", "finite number"]),
    ("tolerance one", lambda c: _with(c.base(), "data.tolerance", 1.0), ["data.tolerance", "between 0 and 1"]),
    ("tolerance above one", lambda c: _with(c.base(), "data.tolerance", 3), ["data.tolerance", "between 0 and 1"]),
    ("min_samples without tolerance", lambda c: _with(c.base(), "data.min_samples", 100), ["min_samples", "set tolerance"]),
    ("min_samples zero", lambda c: _with(_with(c.base(), "data.tolerance", 0.01), "data.min_samples", 0), ["data.min_samples"]),
    ("refine without preview", lambda c: c.base(refine={"metric": "loss", "fraction": 0.1}), ["refine", "set preview too"]),
    ("refine an unknown metric", lambda c: c.base(preview=2, refine={"metric": "hessian_max"}), ["refine.metric", "loss_se"]),
    ("refine fraction zero", lambda c: c.base(preview=2, refine={"fraction": 0}), ["refine.fraction"]),
    ("tolerance with batchnorm recompute", lambda c: _with(c.base(batchnorm="recompute"), "data.tolerance", 0.01),
     ["tolerance", "batchnorm: eval"]),
    ("zero actors", lambda c: c.base(cluster={"actors": 0}), ["cluster.actors"]),
    ("zero attempts", lambda c: c.base(cluster={"max_attempts": 0}), ["cluster.max_attempts"]),
    ("negative placement timeout", lambda c: c.base(cluster={"placement_timeout_s": -1}), ["cluster.placement_timeout_s"]),
    ("negative GPU fraction", lambda c: c.base(cluster={"gpus_per_actor": -0.5}), ["cluster.gpus_per_actor"]),
    ("zero points per pass", lambda c: c.base(evaluator={"points_per_pass": 0}), ["evaluator.points_per_pass"]),
    ("unknown evaluator field", lambda c: c.base(evaluator={"bogus": 1}), ["evaluator.bogus", "unknown field"]),
    ("unknown metric", lambda c: c.base(metrics=["loss", "curvature"]), ["metrics", "curvature"]),
    ("unknown batchnorm mode", lambda c: c.base(batchnorm="sometimes"), ["batchnorm"]),
    ("batchnorm_samples without recompute", lambda c: c.base(batchnorm_samples=50), ["batchnorm_samples", "recompute"]),
    ("unknown normalization", lambda c: _with(c.base(), "slice.normalization", "unit"), ["slice.normalization"]),
    ("unknown ignore", lambda c: _with(c.base(), "slice.ignore", "all"), ["slice.ignore"]),
    ("seed a word", lambda c: _with(c.base(), "slice.seed", "abc"), ["slice.seed"]),
    ("plane through two checkpoints", lambda c: _with(c.base(), "slice", {"kind": "plane_through", "checkpoints": [str(c.run / "epoch_001.pt"), str(c.run / "epoch_002.pt")]}),
     ["slice.checkpoints"]),
    ("line between three checkpoints", lambda c: {**_with(c.base(), "slice", {"kind": "line_between", "checkpoints": [str(c.run / f"epoch_00{i}.pt") for i in (1, 2, 3)]}), "grid": {"x": G["x"]}},
     ["slice.checkpoints"]),
    ("unknown model kind", lambda c: _with(c.base(), "model.kind", "transformer9"), ["model", "unknown model kind 'transformer9'"]),
    ("import model without factory", lambda c: _with(c.base(), "model", {"kind": "import"}), ["model", "factory"]),
    ("factory on a built-in model", lambda c: _with(c.base(), "model.factory", "x:y"), ["factory is only used with kind: import"]),
    ("widths a word", lambda c: _with(c.base(), "model.options", {"widths": "abc"}), ["model.options", "widths must be a list of positive integers"]),
    ("widths with a zero", lambda c: _with(c.base(), "model.options", {"widths": [0]}), ["model.options", "widths[0]"]),
    ("widths negative", lambda c: _with(c.base(), "model.options", {"widths": [-4, 8]}), ["widths[0]"]),
    ("unknown model option", lambda c: _with(c.base(), "model.options", {"widths": [12], "bogus": 1}), ["unknown option", "bogus"]),
    ("model factory path without colon", lambda c: _with(c.base(), "model", {"kind": "import", "factory": "nocolon"}), ["model.factory", "package.module:function"]),
    ("model factory module missing", lambda c: _with(c.base(), "model", {"kind": "import", "factory": "no_such_module_xyz:make"}), ["model.factory", "cannot import module 'no_such_module_xyz'"]),
    ("model factory attribute missing", lambda c: _with(c.base(), "model", {"kind": "import", "factory": "tests.bad_factories:nope"}), ["model.factory", "has no attribute 'nope'"]),
    ("model factory raises", lambda c: _with(c.base(), "model", {"kind": "import", "factory": "tests.bad_factories:model_raises"}), ["raised RuntimeError: no GPU here", "must return an nn.Module"]),
    ("model factory unexpected option", lambda c: _with(c.base(), "model", {**IMPORT_MODEL, "options": {"depth": 3}}), ["raised TypeError", "depth"]),
    ("model factory exits", lambda c: _with(c.base(), "model", {"kind": "import", "factory": "tests.bad_factories:model_exits"}),
     ["model.factory 'tests.bad_factories:model_exits' exited (sys.exit(0))", "must return an nn.Module, not exit"]),
    ("model factory returns a number", lambda c: _with(c.base(), "model", {"kind": "import", "factory": "tests.bad_factories:model_returns_int"}), ["returned int, not an nn.Module"]),
    ("unknown data kind", lambda c: _with(c.base(), "data", {"kind": "cifar"}), ["data", "cifar"]),
    ("synthetic n zero", lambda c: _with(c.base(), "data", {"kind": "synthetic", "n": 0, "shape": [4]}), ["data.n"]),
    ("synthetic empty shape", lambda c: _with(c.base(), "data", {"kind": "synthetic", "n": 10, "shape": []}), ["data.shape"]),
    ("synthetic one class", lambda c: _with(c.base(), "data", {"kind": "synthetic", "n": 10, "shape": [4], "classes": 1}), ["data.classes"]),
    ("digits subset zero", lambda c: _with(c.base(), "data.subset", 0), ["data.subset"]),
    # one subset rule for every kind: oversized is refused, naming the data's size
    ("digits subset oversized", lambda c: _with(c.base(), "data.subset", 1798), ["data.subset 1,798 is larger than digits (1,797 samples)", "use at most 1,797"]),
    ("synthetic subset oversized", lambda c: _with(c.base(), "data", {"kind": "synthetic", "n": 40, "shape": [1, 8, 8], "subset": 41}),
     ["data.subset 41 is larger than the synthetic data (40 samples)", "use at most 40"]),
    ("factory subset oversized", lambda c: {**_with(c.base(), "model", IMPORT_MODEL), "data": {"kind": "import", "factory": "tests.bad_factories:data_ok", "subset": 10**6}},
     ["data.subset 1,000,000 is larger than data factory 'tests.bad_factories:data_ok' (20 samples)", "use at most 20"]),
] + [
    (f"data factory {what}", (lambda fn: lambda c: {**_with(c.base(), "model", IMPORT_MODEL), "data": {"kind": "import", "factory": f"tests.bad_factories:{fn}"}})(fn), needles)
    for what, fn, needles in [
        ("raises", "data_raises", ["data factory 'tests.bad_factories:data_raises' raised ValueError: the file is gone", "must return (inputs, targets)"]),
        ("returns three things", "data_three", ["returned a tuple of 3 item(s)", "must return (inputs, targets)"]),
        ("returns a string", "data_string", ["returned the string 'inputs.csv'"]),
        ("returns None", "data_none", ["returned a NoneType"]),
        ("returns no samples", "data_empty", ["returned 0 samples"]),
        ("returns an empty Dataset", "data_empty_dataset", ["empty Dataset"]),
        ("returns unequal lengths", "data_mismatch", ["20 inputs but 5 targets"]),
        ("returns words", "data_words", ["not numeric"]),
        ("returns NaN inputs", "data_nan", ["1 NaN or inf value(s)"]),
        ("labels beyond the classes", "data_labels_too_big", ["labels run from 3 to 5", "[0, 3)"]),
        ("negative labels", "data_labels_negative", ["labels run from -1 to 1", "[0, 3)"]),
        ("float labels for cross-entropy", "data_float_labels", ["integer class labels"]),
        ("returns a Dataset of 10^9 items", "data_huge_dataset", ["a Dataset of 1,000,000,000 items, more than 10,000,000"]),
        ("returns a Dataset too large for memory", "data_wide_dataset", ["1,000 samples of (100000000,)", "data.subset"]),
        ("returns a Dataset of ragged items", "data_ragged_dataset", ["Dataset item 2", "(5,)", "same shapes"]),
        ("exits", "data_exits", ["data factory 'tests.bad_factories:data_exits' exited (sys.exit('no data today'))"]),
    ]
] + [
    ("data factory unexpected kwarg", lambda c: {**_with(c.base(), "model", IMPORT_MODEL), "data": {"kind": "import", "factory": "tests.bad_factories:data_ok", "kwargs": {"size": 3}}},
     ["raised TypeError", "size", "data.kwargs"]),
    ("data does not fit the model", lambda c: _with(c.base(), "data", {"kind": "synthetic", "n": 20, "shape": [3, 5, 5], "classes": 10}), ["does not fit the model"]),
    # checkpoints
    ("missing checkpoint", lambda c: _with(c.base(), "slice.checkpoint", str(c.tmp / "nope.pt")), ["nope.pt", "does not exist"]),
    ("checkpoint is a directory", lambda c: _with(c.base(), "slice.checkpoint", str(c.tmp)), ["is a directory"]),
    ("empty checkpoint", lambda c: _with(c.base(), "slice.checkpoint", _file(c, "e.pt", b"")), ["e.pt", "is empty (0 bytes)", "state_dict"]),
    ("text checkpoint", lambda c: _with(c.base(), "slice.checkpoint", _file(c, "t.pt", b"weights: 1 2 3\n")), ["t.pt", "is a text file"]),
    ("truncated checkpoint", lambda c: _with(c.base(), "slice.checkpoint", _truncated(c)), ["truncated or corrupt"]),
    ("pickled whole model", lambda c: _with(c.base(), "slice.checkpoint", c.ckpt({"model": torch.nn.Linear(2, 2)})), ["safe loading (weights_only) refuses"]),
    ("raw pickle", lambda c: _with(c.base(), "slice.checkpoint", _file(c, "p.pt", pickle.dumps({"a": 1}))), ["p.pt", "weights_only"]),
    ("checkpoint holds a list", lambda c: _with(c.base(), "slice.checkpoint", c.ckpt([1, 2])), ["holds list, not a state_dict"]),
    ("checkpoint holds an empty dict", lambda c: _with(c.base(), "slice.checkpoint", c.ckpt({})), ["holds an empty dict"]),
    ("checkpoint of another model", lambda c: _with(c.base(), "slice.checkpoint", c.ckpt({"fc.weight": torch.zeros(2, 2)})), ["does not fit the model", "missing"]),
    ("checkpoint of other shapes", lambda c: _with(c.base(), "slice.checkpoint", c.ckpt(c.state(**{"net.0.weight": torch.zeros(3, 64)}))), ["shape mismatch"]),
    ("NaN weights", lambda c: _with(c.base(), "slice.checkpoint", c.ckpt(c.state(**{"net.2.bias": torch.full((10,), float("nan"))}))), ["NaN or inf in net.2.bias", "allow_nonfinite"]),
    ("inf weights", lambda c: _with(c.base(), "slice.checkpoint", c.ckpt(c.state(**{"net.0.weight": torch.full((12, 64), float("inf"))}))), ["NaN or inf in net.0.weight"]),
    ("identical checkpoints for a line", lambda c: {**_with(c.base(), "slice", {"kind": "line_between", "checkpoints": [str(c.run / "epoch_001.pt")] * 2}), "grid": {"x": G["x"]}},
     ["identical"]),
    ("three checkpoints on one line", lambda c: _with(c.base(), "slice", {"kind": "plane_through", "checkpoints": _collinear(c)}), ["lie on one line"]),
    # the file itself
    ("spec not YAML", lambda c: "name: [unclosed\n", ["not valid YAML"]),
    ("duplicate key", lambda c: "name: a\nname: b\n", ["duplicate key 'name'"]),
    ("spec is a list", lambda c: "- name: a\n", ["mapping of fields"]),
    ("empty spec", lambda c: "", ["mapping of fields"]),
    ("spec is a number", lambda c: "42\n", ["mapping of fields"]),
]


def _file(c: Ctx, name: str, data: bytes) -> str:
    p = c.tmp / name
    p.write_bytes(data)
    return str(p)


def _truncated(c: Ctx) -> str:
    data = (c.run / "epoch_003.pt").read_bytes()
    return _file(c, "trunc.pt", data[: len(data) // 2])


def _collinear(c: Ctx) -> list[str]:
    a = torch.load(c.run / "epoch_001.pt", weights_only=True)
    b = torch.load(c.run / "epoch_002.pt", weights_only=True)
    mid = {k: (v + b[k]) / 2 if v.is_floating_point() else v for k, v in a.items()}
    return [str(c.run / "epoch_001.pt"), str(c.run / "epoch_002.pt"), c.ckpt(mid, "mid.pt")]


# -- every other command: (id, argv(ctx), needles) ---------------------------------------------


def _user_folder(c: Ctx) -> str:
    d = c.tmp / "mine"
    d.mkdir(exist_ok=True)
    (d / "notes.txt").write_text("keep")
    return str(d)


def _not_result(c: Ctx) -> str:
    d = c.tmp / "notresult.zarr"
    d.mkdir(exist_ok=True)
    (d / "zarr.json").write_text('{"zarr_format": 3, "node_type": "group", "attributes": {}}')
    return str(d)


def _a_file(c: Ctx, name: str = "afile") -> str:
    p = c.tmp / name
    p.write_text("x")
    return str(p)


def _creating(c: Ctx) -> str:
    d = c.tmp / "creating.zarr"
    d.mkdir(exist_ok=True)
    (d / "zarr.json").write_text('{"zarr_format": 3, "node_type": "group", "attributes": {"landscape": {"format": "landscape-result/1", "status": "creating"}}}')
    return str(d)


def _train(c: Ctx, **over) -> str:
    d = {"name": "t", "model": TINY_MODEL, "data": TINY_DATA, "epochs": 1, **over}
    return c.spec({k: v for k, v in d.items() if v is not None}, "train.yaml")


RUN = lambda c, *extra: ["run", c.spec(c.base()), "--no-plot", *extra]  # noqa: E731
OTHER_CASES: list[tuple[str, Callable[[Ctx], list[str]], list[str]]] = [
    ("run: spec file missing", lambda c: ["run", str(c.tmp / "none.yaml")], ["none.yaml", "does not exist"]),
    ("run: spec is a directory", lambda c: ["run", str(c.tmp)], ["is a directory"]),
    ("validate: spec is a directory", lambda c: ["validate", str(c.tmp)], ["is a directory"]),
    ("run: spec is binary", lambda c: ["run", _file(c, "bin.yaml", bytes(range(256)))], ["not a text file"]),
    ("run: --out is a file", lambda c: RUN(c, "--out", _a_file(c, "out.zarr")), ["it is a file"]),
    ("run: --out is a user's folder", lambda c: RUN(c, "--out", _user_folder(c)), ["not a landscape result (it holds notes.txt)", "left alone"]),
    ("run: --overwrite on a user's folder", lambda c: RUN(c, "--out", _user_folder(c), "--overwrite"), ["not a landscape result (it holds notes.txt)"]),
    ("run: --out is another Zarr group", lambda c: RUN(c, "--out", _not_result(c), "--overwrite"), ["Zarr group that is not a landscape result"]),
    ("run: --out under a file", lambda c: RUN(c, "--out", str(Path(_a_file(c)) / "sub.zarr")), ["cannot create", "Not a directory"]),
    ("run: --out holds a different scan", lambda c: ["run", c.spec(c.base(name="other")), "--no-plot", "--out", str(c.plane)], ["holds a different scan", "--overwrite"]),
    ("run: zero actors", lambda c: RUN(c, "--actors", "0"), ["--actors", "positive integer"]),
    ("run: actors a word", lambda c: RUN(c, "--actors", "two"), ["--actors", "'two'"]),
    ("run: negative GPU fraction", lambda c: RUN(c, "--gpus-per-actor", "-1"), ["--gpus-per-actor", ">= 0"]),
    ("run: GPU fraction NaN", lambda c: RUN(c, "--gpus-per-actor", "nan"), ["--gpus-per-actor", "finite"]),
    ("run: figure format", lambda c: ["run", c.spec(c.base()), "--format", "jpg"], ["--format", "invalid choice"]),
    ("run: no spec", lambda c: ["run"], ["the following arguments are required: spec"]),
    ("run: unknown flag", lambda c: RUN(c, "--fast"), ["unrecognized arguments: --fast"]),
    ("unknown command", lambda c: ["scan", "x.yaml"], ["invalid choice: 'scan'"]),
    ("point: x outside the grid", lambda c: ["point", str(c.plane), "--x", "5", "--y", "0.5", "-o", str(c.tmp / "w.pt")], ["--x 5 is outside the grid", "--extrapolate"]),
    ("point: y outside the grid", lambda c: ["point", str(c.plane), "--x", "0", "--y", "-3", "-o", str(c.tmp / "w.pt")], ["--y -3 is outside the grid"]),
    ("point: x NaN", lambda c: ["point", str(c.plane), "--x", "nan", "--y", "0", "-o", str(c.tmp / "w.pt")], ["--x", "finite"]),
    ("point: y inf", lambda c: ["point", str(c.plane), "--x", "0", "--y", "inf", "-o", str(c.tmp / "w.pt")], ["--y", "finite"]),
    ("point: x inf even with --extrapolate", lambda c: ["point", str(c.plane), "--x=-inf", "--y", "0", "--extrapolate", "-o", str(c.tmp / "w.pt")], ["--x", "finite"]),
    ("point: plane without y", lambda c: ["point", str(c.plane), "--x", "0", "-o", str(c.tmp / "w.pt")], ["give both --x and --y"]),
    ("point: line with y", lambda c: ["point", str(c.line), "--x", "0", "--y", "0", "-o", str(c.tmp / "w.pt")], ["is a line: give --x only"]),
    ("point: result missing", lambda c: ["point", str(c.tmp / "none.zarr"), "--x", "0", "-o", str(c.tmp / "w.pt")], ["no result at"]),
    ("point: result is a file", lambda c: ["point", _a_file(c), "--x", "0", "-o", str(c.tmp / "w.pt")], ["is a file, not a result"]),
    ("point: result is another Zarr group", lambda c: ["point", _not_result(c), "--x", "0", "-o", str(c.tmp / "w.pt")], ["not a landscape result"]),
    ("point: unfinished creation", lambda c: ["point", _creating(c), "--x", "0", "-o", str(c.tmp / "w.pt")], ["unfinished result"]),
    ("point: -o a directory", lambda c: ["point", str(c.plane), "--x", "0", "--y", "0.5", "-o", str(c.tmp)], ["is a directory"]),
    ("point: -o under a file", lambda c: ["point", str(c.plane), "--x", "0", "--y", "0.5", "-o", str(Path(_a_file(c)) / "w.pt")], ["cannot write -o"]),
    ("point: no -o", lambda c: ["point", str(c.plane), "--x", "0"], ["-o/--output"]),
    ("point: x a word", lambda c: ["point", str(c.plane), "--x", "left", "-o", "w.pt"], ["--x", "'left'"]),
    ("plot: result missing", lambda c: ["plot", str(c.tmp / "none.zarr")], ["no result at"]),
    ("plot: not a result", lambda c: ["plot", _not_result(c)], ["not a landscape result"]),
    ("plot: user folder", lambda c: ["plot", _user_folder(c)], ["not a landscape result"]),
    ("plot: format", lambda c: ["plot", str(c.plane), "--format", "bmp"], ["--format", "invalid choice"]),
    ("plot: --out under a file", lambda c: ["plot", str(c.plane), "--out", str(Path(_a_file(c)) / "plots")], ["Not a directory"]),
    ("fetch: source missing", lambda c: ["fetch", str(c.tmp / "none.zarr"), "-o", str(c.tmp / "copy.zarr")], ["no result at"]),
    ("fetch: source not a result", lambda c: ["fetch", _not_result(c), "-o", str(c.tmp / "copy.zarr")], ["not a landscape result"]),
    ("fetch: onto a user's folder", lambda c: ["fetch", str(c.plane), "-o", _user_folder(c)], ["not a landscape result", "left alone"]),
    ("fetch: --overwrite onto a user's folder", lambda c: ["fetch", str(c.plane), "-o", _user_folder(c), "--overwrite"], ["not a landscape result", "left alone"]),
    ("fetch: onto a result", lambda c: ["fetch", str(c.line), "-o", str(c.plane)], ["already holds a result", "--overwrite"]),
    ("fetch: onto itself", lambda c: ["fetch", str(c.plane), "-o", str(c.plane), "--overwrite"], ["is already at"]),
    ("fetch: no -o", lambda c: ["fetch", str(c.plane)], ["-o/--output"]),
    ("train: zero epochs", lambda c: ["train", _train(c, epochs=0)], ["epochs"]),
    ("train: lr zero", lambda c: ["train", _train(c, lr=0)], ["lr"]),
    ("train: lr NaN", lambda c: ["train", _train(c, lr=float("nan"))], ["lr"]),
    ("train: lr negative", lambda c: ["train", _train(c, lr=-0.1)], ["lr"]),
    ("train: batch size zero", lambda c: ["train", _train(c, batch_size=0)], ["batch_size"]),
    ("train: data.tolerance", lambda c: ["train", _train(c, data={**TINY_DATA, "tolerance": 0.01})], ["data", "scans only"]),
    ("train: momentum negative", lambda c: ["train", _train(c, momentum=-1)], ["momentum"]),
    ("train: unknown field", lambda c: ["train", _train(c, slice={"kind": "random_plane"})], ["slice", "unknown field"]),
    ("train: unknown model", lambda c: ["train", _train(c, model={"kind": "gpt"})], ["unknown model kind 'gpt'"]),
    ("train: data does not fit", lambda c: ["train", _train(c, model={"kind": "cnn"}, data={"kind": "synthetic", "n": 10, "shape": [7]})], ["model.options", "image input"]),
    ("train: labels beyond the model", lambda c: ["train", _train(c, model=IMPORT_MODEL, data={"kind": "import", "factory": "tests.bad_factories:data_labels_too_big"})], ["labels run from 3 to 5"]),
    ("train: --out is a file", lambda c: ["train", _train(c), "--out", _a_file(c)], ["is a file"]),
    ("train: --out holds other files", lambda c: ["train", _train(c), "--out", _user_folder(c)], ["not checkpoints of a run", "notes.txt"]),
    ("train: spec missing", lambda c: ["train", str(c.tmp / "none.yaml")], ["does not exist"]),
    ("validate: train spec with a bad field", lambda c: ["validate", _train(c, epochs=-1)], ["epochs"]),
    ("schema: unknown kind", lambda c: ["schema", "--kind", "bogus"], ["--kind", "invalid choice"]),
    ("submit: no cluster given", lambda c: ["submit", c.spec(c.base()), "--out", "/abs/r.zarr"], ["no Ray cluster given", "--address"]),
    ("submit: relative --out", lambda c: ["submit", c.spec(c.base()), "--out", "r.zarr", "--address", "http://127.0.0.1:9"], ["relative path"]),
    ("submit: unknown --env", lambda c: ["submit", c.spec(c.base()), "--out", "/abs/r.zarr", "--address", "http://127.0.0.1:9", "--env", "NO_SUCH_VAR_XYZ"], ["--env NO_SUCH_VAR_XYZ"]),
    ("submit: bad spec", lambda c: ["submit", c.spec({**c.base(), "gird": G}), "--out", "/abs/r.zarr", "--address", "http://127.0.0.1:9"], ["gird", "unknown field"]),
    ("status: no cluster given", lambda c: ["status", "landscape-x-1"], ["no Ray cluster given"]),
    ("stop: --address auto", lambda c: ["stop", "landscape-x-1", "--address", "auto"], ["names no dashboard"]),
    ("logs: nobody listening", lambda c: ["logs", "landscape-x-1", "--address", "http://127.0.0.1:9"], ["cannot reach the Ray Jobs API"]),
    ("list: no cluster given", lambda c: ["list"], ["no Ray cluster given"]),
]

