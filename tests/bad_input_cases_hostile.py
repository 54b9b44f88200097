"""More bad inputs for tests/test_bad_inputs.py, tried as an adversary would: YAML that expands or nests
without bound, seeds and tiles and learning rates beyond any use, labels and names in other alphabets
or encodings. Same shape as tests/bad_input_cases.py: (id, make(ctx), needles)."""

from __future__ import annotations

import textwrap
from typing import Callable

import yaml

from .bad_input_cases import Ctx, _file, _train, _with
from .conftest import TINY_DATA, TINY_MODEL


def _laughs(levels: int = 9) -> str:
    """A billion laughs: `levels` anchors, each nine of the one before (9**9 = 387,420,489 strings from ~600 bytes)."""
    lines = ['l0: &l0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    lines += [f"l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * 9)}]" for i in range(1, levels)]
    return "\n".join(lines)


def _alias_chain(n: int = 80) -> str:
    """Each anchor a list holding the one before: 80 levels deep once expanded, 80 lines as written."""
    return "\n".join(["c0: &c0 [x]"] + [f"c{i}: &c{i} [*c{i - 1}]" for i in range(1, n)])


def _text(c: Ctx, field: str, body: str, spec: dict | None = None) -> str:
    """The base spec as YAML text, with top-level `field` written as `body` (YAML text, indented under it)."""
    d = spec if spec is not None else c.base()
    d.pop(field, None)
    return yaml.safe_dump(d) + f"{field}:\n" + textwrap.indent(body, "  ") + "\n"


IMPORT_DATA = "kind: import\nfactory: tests.bad_factories:data_ok\nkwargs:\n"
BIG = 2**64
HOSTILE_SPEC_CASES: list[tuple[str, Callable[[Ctx], dict | str], list[str]]] = [
    ("alias bomb in data.kwargs", lambda c: _text(c, "data", IMPORT_DATA + textwrap.indent(_laughs(), "  ")),
     ["expands to more than 100,000 values", "YAML aliases"]),
    ("alias bomb in model.options", lambda c: _text(c, "model", "kind: mlp\noptions:\n" + textwrap.indent(_laughs(), "  ")),
     ["expands to more than 100,000 values"]),
    ("recursive alias", lambda c: _text(c, "model", "kind: mlp\noptions: &o\n  again: *o"),
     ["a YAML alias refers to a value that contains it", "cannot be recursive"]),
    ("50,000-deep flow nesting", lambda c: "name: " + "[" * 50_000 + "]" * 50_000 + "\n", ["nested more than 64 levels deep"]),
    ("300-deep block nesting", lambda c: _text(c, "model", "kind: mlp\noptions:\n" + "".join("  " * (i + 1) + f"k{i}:\n" for i in range(300))),
     ["nested more than 64 levels deep (line"]),
    ("an alias chain deeper than 64 once expanded", lambda c: _text(c, "model", "kind: mlp\noptions:\n" + textwrap.indent(_alias_chain(), "  ")),
     ["nested more than 64 levels deep once its aliases are expanded"]),
    ("spec over 1 MiB", lambda c: yaml.safe_dump(c.base()) + ("#" + "x" * 1000 + "\n") * 1100, ["larger than 1 MiB"]),
    ("an integer of 5,000 digits", lambda c: _text(c, "grid", "x: {min: -1, max: 1, num: 1" + "0" * 5000 + "}\ny: {min: -1, max: 1, num: 3}"),
     ["cannot read a value", "4300 digits"]),
    ("slice.seed 2**64", lambda c: _with(c.base(), "slice.seed", BIG), ["slice.seed", "from 0 to 2**63 - 1", str(BIG)]),
    ("slice.seed negative", lambda c: _with(c.base(), "slice.seed", -1), ["slice.seed", "got -1"]),
    ("slice.seed of 40 digits", lambda c: _with(c.base(), "slice.seed", 10**39), ["slice.seed", "an integer of 40 digits"]),
    ("model.seed 2**64", lambda c: _with(c.base(), "model.seed", BIG), ["model.seed", "2**63 - 1"]),
    ("data.seed 2**64", lambda c: _with(c.base(), "data.seed", BIG), ["data.seed", "2**63 - 1"]),
    ("tile 1e30", lambda c: c.base(tile=1e30), ["tile", "points per side is more than 4,096"]),
    ("tile 2**63", lambda c: c.base(tile=2**63), ["tile", "9,223,372,036,854,775,808 points per side"]),
    ("tile 10,000,000 on a small grid", lambda c: c.base(tile=10_000_000), ["tile", "10,000,000 points per side", "larger than the grid"]),
    ("tile of 16.7 million points", lambda c: c.base(tile=[4096, 4096]), ["tile [4096, 4096] holds 16,777,216 points", "4,194,304"]),
    ("tile a fraction", lambda c: c.base(tile=[3, 2.5]), ["tile", "got 2.5"]),
    ("tile the string 1e30", lambda c: c.base(tile="1e30"), ["tile", "got '1e30'"]),
    ("cpus_per_actor inf", lambda c: c.base(cluster={"cpus_per_actor": float("inf")}), ["cluster.cpus_per_actor", "finite"]),
    ("a name in Cyrillic", lambda c: _with(c.base(), "name", "имя"), ["name", "ASCII letters A-Z a-z", "'имя' holds 'и'"]),
    ("a name starting with a dot", lambda c: _with(c.base(), "name", ".hidden"), ["name", "starts with '.'"]),
]


def _health(c: Ctx, **over) -> dict:
    return {"name": "h", "model": TINY_MODEL, "data": TINY_DATA, **over}


def _curve(c: Ctx, **over) -> str:
    ends = [str(c.run / "epoch_001.pt"), str(c.run / "epoch_003.pt")]
    return c.spec({"name": "c", "model": TINY_MODEL, "data": TINY_DATA, "epochs": 1, "endpoints": ends,
                   "curve": {"kind": "bezier"}, "output": str(c.tmp / "curve"), **over}, "curve.yaml")


def _animate(c: Ctx, frames) -> str:
    d = c.base()
    d["slice"] = {"kind": "curve_plane", "curve": str(c.tmp / "curve")}
    return c.spec({**d, "frames": frames}, "animate.yaml")


LR_RANGE = {"lo": 1e-3, "hi": 1.0, "num": 2}
HOSTILE_OTHER_CASES: list[tuple[str, Callable[[Ctx], list[str]], list[str]]] = [
    ("train: seed 2**64", lambda c: ["train", _train(c, seed=BIG)], ["seed", "2**63 - 1"]),
    ("train: model.seed 2**64", lambda c: ["train", _train(c, model={**TINY_MODEL, "seed": BIG})], ["model.seed", "2**63 - 1"]),
    ("train: lr 1e308", lambda c: ["train", _train(c, lr=1e308)], ["lr", "at most 1e+12", "got 1e+308"]),
    ("train: lr inf", lambda c: ["train", _train(c, lr=float("inf"))], ["lr", "finite"]),
    ("train: momentum 1", lambda c: ["train", _train(c, momentum=1.0)], ["momentum", "less than 1"]),
    ("train: weight_decay 1e6", lambda c: ["train", _train(c, weight_decay=1e6)], ["weight_decay", "less than or equal to 10"]),
    ("train-curve: seed 2**64", lambda c: ["train-curve", _curve(c, seed=BIG)], ["seed", "2**63 - 1"]),
    ("train-curve: lr 1e308", lambda c: ["train-curve", _curve(c, lr=1e308)], ["lr", "at most 1e+12"]),
    ("train-curve: num_bends 2**64", lambda c: ["train-curve", _curve(c, curve={"kind": "bezier", "num_bends": BIG})],
     ["curve.num_bends", "less than or equal to 64"]),
    ("gradients: seed 2**64", lambda c: ["gradients", c.spec(_health(c, record="epoch", seed=BIG), "g.yaml"), "--out", str(c.tmp / "g.zarr")],
     ["seed", "2**63 - 1"]),
    ("gradients: lr 1e308", lambda c: ["gradients", c.spec(_health(c, record="epoch", lr=1e308), "g.yaml"), "--out", str(c.tmp / "g.zarr")],
     ["lr", "at most 1e+12"]),
    ("lr-scan: seed 2**64", lambda c: ["lr-scan", c.spec(_health(c, learning_rates=LR_RANGE, seed=BIG), "l.yaml"), "--out", str(c.tmp / "l.zarr")],
     ["seed", "2**63 - 1"]),
    ("lr-scan: hi 1e300", lambda c: ["lr-scan", c.spec(_health(c, learning_rates={**LR_RANGE, "hi": 1e300}), "l.yaml"), "--out", str(c.tmp / "l.zarr")],
     ["learning_rates.hi", "at most 1e+12"]),
    ("animate: no frames", lambda c: ["animate", _animate(c, [])], ["frames", "a list of epoch numbers >= 0", "an empty list has no frame"]),
    ("animate: a negative frame", lambda c: ["animate", _animate(c, [-1])], ["frames", "got -1", "epochs count from 0"]),
    ("list: --address ftp://x", lambda c: ["list", "--address", "ftp://x"], ["ftp:// is not an address of a Ray dashboard", "http://"]),
    ("validate: a UTF-16 spec without a byte-order mark", lambda c: ["validate", _file(c, "u16.yaml", "name: x\n".encode("utf-16-le"))],
     ["not a text file in UTF-8", "UTF-16 with a byte-order mark"]),
    ("validate: a Latin-1 spec", lambda c: ["validate", _file(c, "latin1.yaml", "name: café\n".encode("latin-1"))],
     ["not a text file in UTF-8 (byte 9)"]),
]
