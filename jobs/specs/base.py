"""What every spec shares: strict models, one-line error messages (reading a spec file: spec_file.py)."""

from __future__ import annotations

import hashlib
import json
import math
import re
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, PrivateAttr, ValidationError

from landscape.errors import SpecError

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


class Strict(BaseModel):
    """Unknown fields are an error (a typo names the field), not silently ignored."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)  # no spec number means anything at NaN or inf
    _submitted: dict | None = PrivateAttr(None)

    @property
    def submitted(self) -> dict | None:
        """For a spec a submitted job reads from its bundle: what `landscape submit` recorded where the spec
        was written (jobs/service/bundle.py: the identity, landscape's commit, the uploaded inputs' paths)."""
        return self._submitted

    def numbers_identity(self, exclude: set[str], exclude_defaults: bool = False, **more) -> str:
        """identity_of this spec's fields less `exclude` (where results go, who computes), plus `more`."""
        dump = self.model_dump(mode="json", exclude=exclude, exclude_defaults=exclude_defaults, context={"identity": True})
        return identity_of(dump | more)


def identity_of(fields: dict | str) -> str:
    """The one identity of every result kind: 16 hex digits of SHA-256 over what changes its numbers (a dict as JSON
    with sorted keys, a str as is). A result resumes only into a run of the same identity (cluster ResultWriter)."""
    text = fields if isinstance(fields, str) else json.dumps(fields, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def check_name(v: str) -> str:
    """ASCII only: a name becomes file names, S3 keys and Ray job ids, which do not all take other characters."""
    if not _NAME.match(v):
        bad = next((ch for ch in v if not (ch.isascii() and (ch.isalnum() or ch in "_.-"))), None)
        why = f"{v!r} holds {bad!r}" if bad is not None else ("it is empty" if not v else f"{v!r} starts with {v[0]!r}")
        raise ValueError(
            f"use only ASCII letters A-Z a-z, digits 0-9, '_', '.' and '-', starting with a letter or digit "
            f"(it names output files); {why}"
        )
    return v


MAX_SEED = 2**63 - 1  # torch takes 64-bit seeds; JSON readers and int64 fields stop at 2**63 - 1


def _seed(v: int) -> int:
    if not 0 <= v <= MAX_SEED:
        shown = str(v) if len(str(v)) <= 24 else f"an integer of {len(str(abs(v)))} digits"
        raise ValueError(f"a seed is an integer from 0 to 2**63 - 1 ({MAX_SEED}), got {shown}")
    return v


# every seed field of every spec (the bounds also in `landscape schema`)
Seed = Annotated[int, AfterValidator(_seed), Field(json_schema_extra={"minimum": 0, "maximum": MAX_SEED})]

MAX_LR = 1e12  # far beyond any rate that trains (an LR scan may probe divergence); beyond float32's range SGD cannot even apply it


def check_lr(v: float) -> float:
    if not (math.isfinite(v) and 0 < v <= MAX_LR):
        raise ValueError(f"a learning rate is a number > 0 and at most {MAX_LR:g} (far beyond any rate that trains), got {v:g}")
    return v


# every learning rate of every spec
LearningRate = Annotated[float, AfterValidator(check_lr), Field(json_schema_extra={"exclusiveMinimum": 0, "maximum": MAX_LR})]


# Discriminator values of the unions: pydantic puts them in error locations, users never wrote them.
UNION_TAGS: set[str] = set()


def _is_branch(part) -> bool:
    """A location part that names a union branch or validator, not a field (`int`, `tuple[int, int]`, ...)."""
    p = str(part)
    return p in UNION_TAGS or "[" in p or p.startswith("function-") or p in _TYPE_NAMES


_TYPE_NAMES = {"int", "float", "str", "bool", "list", "dict", "tuple", "none", "literal"}


def format_validation_error(err: ValidationError, source: str) -> str:
    """One line: each problem's field (dotted path) and what to do, '; '-separated.

    A field that accepts several forms fails once per form; it is reported once, at
    the field, with the first form's complaint.
    """
    seen: dict[str, str] = {}
    for e in err.errors():
        parts = list(e["loc"])
        loc: list[str] = []
        for i, part in enumerate(parts):
            p = str(part)
            if p in UNION_TAGS and 0 < i < len(parts) - 1:
                continue  # a union's tag, between its field and the member's field (a field may share its name: `curve`)
            if p not in UNION_TAGS and _is_branch(part):
                break  # a union of forms: the problem is the field itself
            loc.append(p)
        where = ".".join(loc) or "(top level)"
        msg = e["msg"].removeprefix("Value error, ")
        if e["type"] == "extra_forbidden":
            msg = "unknown field; check its spelling against `landscape schema`"
        elif e["type"] == "missing":
            msg = "required field is missing"
        if where not in seen:
            seen[where] = msg
        elif msg != seen[where] and not seen[where].endswith("(or another accepted form)"):
            seen[where] += " (or another accepted form)"
    return f"{source}: " + "; ".join(f"{where}: {msg}" for where, msg in seen.items())


def validate(cls: type[BaseModel], raw: dict, source: str):
    try:
        return cls.model_validate(raw)
    except ValidationError as e:
        raise SpecError(format_validation_error(e, source)) from None
