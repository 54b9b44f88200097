"""The data `subset` rule in run identities: results sampled by the earlier rule never resume with other samples.

Rule 2 (landscape/subsets.py) changed which samples a `subset` keeps for digits,
synthetic classification and factory data (stratified by class, oversized refused).
Those specs, with `subset` set, carry `subset_rule: 2` in their data's identity
dump only (never in the spec a result records); every other spec hashes as before.
`former_identities` gives a spec's identity under rule 1, so that a rerun on such
a result says why it does not resume (cluster ResultWriter).
"""

from __future__ import annotations

from contextlib import contextmanager
from contextvars import ContextVar
from typing import Callable

from pydantic import SerializationInfo, model_serializer

from .sampling import Sampling

# The rule's version (landscape/subsets.py), in the run identity of data kinds whose samples it changed:
# 1 sampled digits, synthetic and factory data uniformly and kept everything for an oversized subset.
SUBSET_RULE = 2

_MARKING = ContextVar("subset_rule_marking", default=True)  # False: hash as rule 1 did (former_identities)

SAMPLING_CHANGED = (f"the data sampling changed since it was made (data.subset now keeps a seeded stratified sample of "
                    f"class labels and refuses one larger than the data: subset rule {SUBSET_RULE})")


class SubsetRuleMarked(Sampling):
    """A data kind whose `subset` samples changed with rule 2 (its subclasses: `_rule_changed_samples`)."""

    def _rule_changed_samples(self) -> bool:
        return self.subset is not None

    def _as_before(self, d: dict) -> dict:  # a kind's own adjustment of its dump
        return d

    @model_serializer(mode="wrap")
    def _dump(self, handler, info: SerializationInfo):
        d = self._as_before(handler(self))
        if (info.context or {}).get("identity") and _MARKING.get() and self._rule_changed_samples():
            d["subset_rule"] = SUBSET_RULE
        return d


@contextmanager
def earlier_rule():
    """Specs dump for identities as they did under subset rule 1 inside this block."""
    token = _MARKING.set(False)
    try:
        yield
    finally:
        _MARKING.reset(token)


def former_identities(identity: Callable[[], str]) -> dict[str, str]:
    """{the identity `identity()` had under subset rule 1: why a result of it does not resume}; empty when rule 2
    left this spec's samples alone (its identity is the same)."""
    with earlier_rule():
        old = identity()
    return {old: SAMPLING_CHANGED} if old != identity() else {}
