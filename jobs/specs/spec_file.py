"""Reading a spec file: bounded, then parsed as YAML (JSON is YAML too).

A spec is a few dozen fields. A hostile or broken file must not take the machine:
YAML aliases repeat a value by reference (a "billion laughs" document of a few
hundred bytes expands to 10^9 strings), an alias may point into its own value,
and deep nesting makes any recursive reader overflow. So the file is bounded
before anything is built from it: its size, then (reading events, which is flat)
its nesting depth, then (on the composed node graph, where an alias is one
shared node) the number of values and the depth after expanding every alias.
"""

from __future__ import annotations

import codecs
from pathlib import Path

import yaml

from landscape.errors import SpecError

MAX_SPEC_BYTES = 1 << 20  # 1 MiB: specs are a few kB
MAX_DEPTH = 64  # nested mappings and lists (aliases expanded)
MAX_VALUES = 100_000  # scalars, lists and mappings once every alias is expanded

_BOMS = ((codecs.BOM_UTF32_LE, "utf-32"), (codecs.BOM_UTF32_BE, "utf-32"), (codecs.BOM_UTF8, "utf-8-sig"),
         (codecs.BOM_UTF16_LE, "utf-16"), (codecs.BOM_UTF16_BE, "utf-16"))  # UTF-32 first: its LE BOM starts with UTF-16's
_SAFE = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml when present: parsing and composing in C


class _UniqueKeyLoader(_SAFE):
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


def _text(path: Path) -> str:
    """The file's text: UTF-8, or UTF-16/32 with a byte-order mark; SpecError when larger than MAX_SPEC_BYTES."""
    try:
        with open(path, "rb") as f:
            data = f.read(MAX_SPEC_BYTES + 1)
    except OSError as e:
        raise SpecError(f"cannot read spec {str(path)!r}: {e.strerror or e}") from None
    if len(data) > MAX_SPEC_BYTES:
        raise SpecError(f"{path}: larger than {MAX_SPEC_BYTES >> 20} MiB; a spec is a few kB of YAML (is this the right file?)")
    encoding = next((enc for bom, enc in _BOMS if data.startswith(bom)), "utf-8")
    advice = "a spec is YAML text: save it as UTF-8 (or UTF-16 with a byte-order mark)"
    try:
        text = data.decode(encoding)
    except UnicodeDecodeError as e:
        raise SpecError(f"{path}: not a text file in {'UTF-8' if encoding == 'utf-8' else encoding.upper()} (byte {e.start}); {advice}") from None
    if "\0" in text:
        raise SpecError(f"{path}: not a text file in UTF-8 (it holds NUL bytes: UTF-16 without a byte-order mark?); {advice}")
    return text


def _check_nesting(text: str, path: Path) -> None:
    """Nesting depth and value count from the parse events (no recursion, nothing built), before composing."""
    depth = values = 0
    for event in yaml.parse(text, Loader=_SAFE):
        if isinstance(event, (yaml.ScalarEvent, yaml.AliasEvent, yaml.SequenceStartEvent, yaml.MappingStartEvent)):
            values += 1
            if values > MAX_VALUES:
                raise SpecError(f"{path}: holds more than {MAX_VALUES:,} values (line {event.start_mark.line + 1}); a spec is a few dozen fields")
        if isinstance(event, (yaml.SequenceStartEvent, yaml.MappingStartEvent)):
            depth += 1
            if depth > MAX_DEPTH:
                raise SpecError(f"{path}: nested more than {MAX_DEPTH} levels deep (line {event.start_mark.line + 1}); "
                                "a spec's fields nest a few levels")
        elif isinstance(event, (yaml.SequenceEndEvent, yaml.MappingEndEvent)):
            depth -= 1


def _check_expansion(root: yaml.Node, path: Path) -> None:
    """Values and depth once aliases are expanded, counted on the node graph (each shared node once, no recursion)."""
    size: dict[int, int] = {}  # id(node) -> values under it, itself included
    depth: dict[int, int] = {}
    on_path: set[int] = set()
    stack = [(root, False)]
    while stack:
        node, done = stack.pop()
        key = id(node)
        children = [c for pair in node.value for c in pair] if isinstance(node, yaml.MappingNode) else (
            node.value if isinstance(node, yaml.SequenceNode) else [])
        if done:
            on_path.discard(key)
            size[key] = 1 + sum(size[id(c)] for c in children)
            depth[key] = 1 + max((depth[id(c)] for c in children), default=0)
            if size[key] > MAX_VALUES:
                raise SpecError(f"{path}: expands to more than {MAX_VALUES:,} values (YAML aliases repeat a value each "
                                f"time they are used; near line {node.start_mark.line + 1}); a spec is a few dozen fields")
            if depth[key] > MAX_DEPTH:
                raise SpecError(f"{path}: nested more than {MAX_DEPTH} levels deep once its aliases are expanded "
                                f"(near line {node.start_mark.line + 1}); a spec's fields nest a few levels")
            continue
        if key in size:
            continue
        if key in on_path:
            raise SpecError(f"{path}: a YAML alias refers to a value that contains it (near line {node.start_mark.line + 1}); "
                            "a spec cannot be recursive")
        on_path.add(key)
        stack.append((node, True))
        stack.extend((c, False) for c in children if id(c) not in size)


def read_yaml(path: str | Path) -> dict:
    """The top-level mapping of a YAML (or JSON) spec file, bounded as the module docstring says; SpecError naming the file otherwise."""
    path = Path(path)
    if path.is_dir():
        raise SpecError(f"spec {str(path)!r} is a directory; give a YAML file")
    if not path.is_file():
        raise SpecError(f"spec file {str(path)!r} does not exist")
    text = _text(path)
    loader = None
    try:
        _check_nesting(text, path)
        loader = _UniqueKeyLoader(text)
        node = loader.get_single_node()
        if node is None:
            raise SpecError(f"{path}: expected a mapping of fields at the top level")
        _check_expansion(node, path)
        raw = loader.construct_document(node)
    except yaml.YAMLError as e:
        if "nesting depth" in str(getattr(e, "problem", "")):  # libyaml's own limit (1,000), met before ours in flow style
            raise SpecError(f"{path}: nested more than {MAX_DEPTH} levels deep; a spec's fields nest a few levels") from None
        raise SpecError(f"{path}: not valid YAML: {_yaml_problem(e)}") from None
    except ValueError as e:  # Python's own limits, e.g. an integer of more than 4,300 digits
        raise SpecError(f"{path}: cannot read a value: {str(e).split(';')[0]}") from None
    finally:
        if loader is not None:
            loader.dispose()
    if not isinstance(raw, dict):
        raise SpecError(f"{path}: expected a mapping of fields at the top level")
    return raw
