"""What every spec shares: strict models, YAML reading, one-line error messages."""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError

from landscape.errors import SpecError

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")


class Strict(BaseModel):
    """Unknown fields are an error (a typo names the field), not silently ignored."""

    model_config = ConfigDict(extra="forbid")

    def numbers_identity(self, exclude: set[str], exclude_defaults: bool = False, **more) -> str:
        """identity_of this spec's fields less `exclude` (where results go, who computes), plus `more`."""
        return identity_of(self.model_dump(mode="json", exclude=exclude, exclude_defaults=exclude_defaults) | more)


def identity_of(fields: dict | str) -> str:
    """The one identity of every result kind: 16 hex digits of SHA-256 over what changes its numbers (a dict as JSON
    with sorted keys, a str as is). A result resumes only into a run of the same identity (cluster ResultWriter)."""
    text = fields if isinstance(fields, str) else json.dumps(fields, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def check_name(v: str) -> str:
    if not _NAME.match(v):
        raise ValueError("use letters, digits, '_', '.', '-' (it names output files)")
    return v


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


class _UniqueKeyLoader(yaml.SafeLoader):
    """safe_load, except that a key given twice in one mapping is an error (YAML would keep the last)."""

    def construct_mapping(self, node, deep=False):
        seen: dict = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)
            try:
                hash(key)
            except TypeError:
                raise yaml.constructor.ConstructorError(None, None, f"unhashable key {key!r}", key_node.start_mark)
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key {key!r} (first at line {seen[key] + 1})", key_node.start_mark
                )
            seen[key] = key_node.start_mark.line
        return super().construct_mapping(node, deep=deep)


def _yaml_problem(e: yaml.YAMLError) -> str:
    problem = getattr(e, "problem", None) or str(e).splitlines()[0]
    mark = getattr(e, "problem_mark", None)
    return f"{problem} (line {mark.line + 1}, column {mark.column + 1})" if mark is not None else problem


def read_yaml(path: str | Path) -> dict:
    """The top-level mapping of a YAML spec file; SpecError naming the file otherwise."""
    path = Path(path)
    if path.is_dir():
        raise SpecError(f"spec {str(path)!r} is a directory; give a YAML file")
    if not path.is_file():
        raise SpecError(f"spec file {str(path)!r} does not exist")
    try:
        text = path.read_text()
    except UnicodeDecodeError:
        raise SpecError(f"{path}: not a text file; a spec is YAML") from None
    except OSError as e:
        raise SpecError(f"cannot read spec {str(path)!r}: {e.strerror or e}") from None
    try:
        raw = yaml.load(text, Loader=_UniqueKeyLoader)
    except yaml.YAMLError as e:
        raise SpecError(f"{path}: not valid YAML: {_yaml_problem(e)}") from None
    if not isinstance(raw, dict):
        raise SpecError(f"{path}: expected a mapping of fields at the top level")
    return raw


def validate(cls: type[BaseModel], raw: dict, source: str):
    try:
        return cls.model_validate(raw)
    except ValidationError as e:
        raise SpecError(format_validation_error(e, source)) from None
