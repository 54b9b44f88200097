"""ResultWriter decides, for every result kind, whether a run resumes its result, restarts it or is refused."""

import numpy as np
import pytest

from cluster.store import ArrayDef, ResultStore, ResultWriter
from landscape.errors import ResultError


def _write(url, identity, finish: bool, **kw) -> None:
    with ResultWriter(url, identity=identity, what="gradients", **kw) as w:
        assert w.store is None
        w.create([ArrayDef("v", ("i",), data=np.arange(3.0), dtype="float64")], {"name": "r"})
        if finish:
            w.finish()


@pytest.mark.parametrize("resumable", [True, False])
def test_unfinished_resumes_or_restarts_and_complete_is_kept(tmp_path, capsys, resumable):
    url = str(tmp_path / "r.zarr")
    _write(url, "id1", finish=False, resumable=resumable)
    assert ResultStore.open(url).meta["status"] != "complete"
    with ResultWriter(url, identity="id1", what="gradients", resumable=resumable) as w:
        if resumable:  # the same identity, unfinished: resume into it
            assert w.store is not None and np.array_equal(w.store.group["v"][...], np.arange(3.0))
        else:  # cannot continue part-way: replaced, and said so
            assert w.store is None and "starting again" in capsys.readouterr().err
            w.create([ArrayDef("v", ("i",), data=np.ones(3), dtype="float64")], {"name": "r"})
        w.finish()
    with ResultWriter(url, identity="id1", what="gradients", resumable=resumable) as w:
        assert w.store is not None and w.store.meta["status"] == "complete"  # complete: kept, for either kind
        w.finish()
    with pytest.raises(ResultError, match="different gradients"):
        ResultWriter(url, identity="id2", what="gradients", resumable=resumable).__enter__()
