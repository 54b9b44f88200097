"""One identity helper for every result kind, and the identities it gives are those results made before it carry."""

import hashlib
import json

from jobs.specs import GradientsSpec, LRScanSpec, ScanSpec
from jobs.specs.base import identity_of

from .conftest import TINY_DATA as TINY_DIGITS
from .conftest import TINY_MODEL


def _sha16(d) -> str:  # independent of identity_of: the formula every identity used before it
    return hashlib.sha256(json.dumps(d, sort_keys=True).encode()).hexdigest()[:16]


def test_identity_of_hashes_fields_with_sorted_keys_or_text_as_is():
    assert identity_of({"b": 1, "a": [2.5, "x"]}) == _sha16({"a": [2.5, "x"], "b": 1})
    assert identity_of("abc") == hashlib.sha256(b"abc").hexdigest()[:16]
    assert identity_of({"a": 1}) != identity_of({"a": 2})


def test_spec_identities_are_unchanged(tmp_path):
    # Data without `subset`: the subset rule changed the identities of digits specs with one (tests/test_subset_rule.py).
    TINY_DATA = {k: v for k, v in TINY_DIGITS.items() if k != "subset"}
    ckpt = tmp_path / "w.pt"
    scan = ScanSpec.model_validate({"name": "s", "model": TINY_MODEL, "data": TINY_DATA, "output": "elsewhere.zarr",
                                    "slice": {"kind": "random_plane", "checkpoint": str(ckpt), "seed": 3},
                                    "grid": {"x": {"min": -1, "max": 1, "num": 5}, "y": {"min": -1, "max": 1, "num": 3}}})
    assert scan.identity() == _sha16(scan.model_dump(mode="json", exclude={"output", "cluster"}, exclude_defaults=True))
    assert scan.identity() == scan.model_copy(update={"output": "other.zarr"}).identity()  # where it goes: not numbers
    grads = GradientsSpec.model_validate({"name": "g", "model": TINY_MODEL, "data": TINY_DATA, "epochs": 1, "record": "epoch"})
    assert grads.identity() == _sha16(grads.model_dump(mode="json", exclude={"output", "cluster"}))  # cluster: new, who computes
    lr = LRScanSpec.model_validate({"name": "l", "model": TINY_MODEL, "data": TINY_DATA, "epochs": 1,
                                    "learning_rates": {"lo": 0.01, "hi": 1.0, "num": 3}})
    d = lr.model_dump(mode="json", exclude={"output", "cluster", "bisect"})
    assert lr.identity("scan") == _sha16({**d, "method": "scan"}) != lr.identity("bisect")
