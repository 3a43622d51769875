"""Configuration: YAML in, frozen dataclasses out, validated once at the edge.

``from_dict(Cls, data)`` builds a frozen dataclass from plain YAML data,
checking every key and type and recursing into nested dataclasses, so that a
typo or a wrong type fails before any work with one line naming the key. Every
number must be finite (``.inf`` and ``.nan`` are refused) and every integer fit
in 64 bits. ``set_path`` sets one dotted key; ``apply_overrides`` applies
``--set a.b=value`` strings through it (values parsed as YAML).

All YAML goes through ``parse_yaml``: a safe loader that reads ``1e-5``,
``1E5`` and ``-2e-3`` as floats (PyYAML's YAML 1.1 rules read them as strings)
and refuses a document whose aliases would expand past ``limits.YAML_NODES``
values, before anything is built from it (an alias bomb is a few hundred bytes).
"""

from __future__ import annotations

import dataclasses
import math
import re
import types
import typing
from pathlib import Path
from typing import Any

import yaml

from ferlab import limits
from ferlab.errors import FerlabError, LimitError

INT_BOUND = 1 << 63  # config integers lie in [-2**63, 2**63)


class ConfigError(FerlabError):
    """A config file, key or value that is not valid."""


class YamlLoader(yaml.SafeLoader):
    """PyYAML's safe loader, plus YAML 1.2 floats without a dot and a bound on alias expansion."""

    def compose_document(self):
        node = super().compose_document()
        _check_expanded_size(node)
        return node


YamlLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9][0-9_]*(?:\.[0-9_]*)?|\.[0-9_]+)[eE][-+]?[0-9]+$"),
    list("-+0123456789."),
)


def parse_yaml(text: str, where: str = "YAML"):
    """Parse YAML text with ``YamlLoader``; ConfigError (naming ``where``) on any problem."""
    try:
        return yaml.load(text, Loader=YamlLoader)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        at = f" at line {mark.line + 1}" if mark else ""
        raise ConfigError(f"{where}: not valid YAML{at}") from None
    except RecursionError:
        raise ConfigError(f"{where}: YAML nested too deeply") from None
    except ValueError as e:  # a scalar its constructor refuses: an integer past 4300 digits, a date like 2024-13-01
        reason = str(e).split(":")[0].splitlines()[0] if str(e) else "a value that cannot be read"
        raise ConfigError(f"{where}: not valid YAML ({reason})") from None
    except (ConfigError, LimitError) as e:
        raise ConfigError(f"{where}: {e}") from None


def _check_expanded_size(root) -> None:
    """Count the values of a composed YAML graph as if every alias were copied out;
    LimitError over ``limits.YAML_NODES``, ConfigError for an alias inside itself."""
    if root is None:
        return
    cap = limits.YAML_NODES.value
    sizes: dict[int, int] = {}
    active: set[int] = set()
    stack = [(root, False)]
    while stack:
        node, done = stack.pop()
        key = id(node)
        children = _yaml_children(node)
        if done:
            active.discard(key)
            sizes[key] = 1 + sum(sizes[id(c)] for c in children)
            if sizes[key] > cap:
                limits.YAML_NODES.check(sizes[key], "document")
            continue
        if key in sizes:
            continue
        if key in active:
            raise ConfigError("an alias refers to a value that contains it")
        active.add(key)
        stack.append((node, True))
        stack.extend((c, False) for c in children if id(c) not in sizes)


def _yaml_children(node) -> list:
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    if isinstance(node, yaml.MappingNode):
        return [part for pair in node.value for part in pair]
    return []


def load_yaml(path: str | Path) -> dict:
    """Read a YAML mapping; ConfigError if the file is missing or not a mapping."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as e:
        raise ConfigError(f"{path}: cannot read ({e.strerror})") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not valid YAML (not UTF-8 text)") from None
    data = parse_yaml(text, str(path))
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping of settings, got {type(data).__name__}")
    return data


def set_path(data: dict, key: str, value) -> dict:
    """Set ``data["a"]["b"]["c"] = value`` for ``key`` ``"a.b.c"`` in place (and return ``data``).

    Missing (or null) sections on the way are created as empty mappings; a part
    that holds something other than a mapping is refused with ConfigError naming it.
    """
    parts = key.split(".")
    if not key or any(not part.strip() for part in parts):
        raise ConfigError(f"{key!r}: expected a dotted key like a.b.c")
    node = data
    for i, part in enumerate(parts[:-1]):
        child = node.get(part)
        if child is None:
            child = node[part] = {}
        if not isinstance(child, dict):
            raise ConfigError(f"{key!r}: {'.'.join(parts[: i + 1])!r} is not a section (it holds {_show(child)})")
        node = child
    node[parts[-1]] = value
    return data


def apply_overrides(data: dict, overrides: list[str] | tuple[str, ...]) -> dict:
    """Return a copy of ``data`` with each ``dotted.key=value`` set (value parsed as YAML)."""
    out = _deep_copy(data)
    for item in overrides:
        key, sep, raw = item.partition("=")
        shown = repr(item) if len(item) <= 80 else repr(item[:60]) + f"... ({len(item)} characters)"
        if not sep or not key.strip():
            raise ConfigError(f"--set {shown}: expected key=value")
        try:
            value = parse_yaml(raw, "value") if raw.strip() else ""
            set_path(out, key.strip(), value)
        except ConfigError as e:
            raise ConfigError(f"--set {shown}: {e}") from None
    return out


def from_dict(cls, data: Any, where: str = "config"):
    """Build dataclass ``cls`` from ``data``, rejecting unknown keys and wrong types."""
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: expected a mapping, got {_type_name(data)}")
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise ConfigError(f"{where}: unknown key {unknown[0]!r} (known: {', '.join(sorted(fields))})")
    hints = typing.get_type_hints(cls)
    kwargs = {}
    for name, f in fields.items():
        if name in data:
            kwargs[name] = convert(hints[name], data[name], f"{where}.{name}")
        elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            raise ConfigError(f"{where}: missing required key {name!r}")
    try:
        return cls(**kwargs)
    except (ValueError, TypeError) as e:
        raise ConfigError(f"{where}: {e}") from None


def to_dict(obj) -> Any:
    """A dataclass (nested) as plain YAML-able data."""
    if dataclasses.is_dataclass(obj):
        return {f.name: to_dict(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, (list, tuple)):
        return [to_dict(v) for v in obj]
    if isinstance(obj, dict):
        return {k: to_dict(v) for k, v in obj.items()}
    return obj


def flatten(data: Any, prefix: str = "") -> dict[str, Any]:
    """Nested mappings as ``{"a.b": value}`` (for logging params)."""
    if dataclasses.is_dataclass(data):
        data = to_dict(data)
    if not isinstance(data, dict):
        return {prefix: data}
    out = {}
    for key, value in data.items():
        name = f"{prefix}.{key}" if prefix else str(key)
        out.update(flatten(value, name) if isinstance(value, dict) else {name: value})
    return out


def convert(tp, value, where: str):
    """Check and convert one value against a type annotation."""
    origin = typing.get_origin(tp)
    if tp is Any:
        _check_numbers(value, where)
        return value
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(tp)
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return convert(arg, value, where)
            except ConfigError as e:
                errors.append(str(e))
        raise ConfigError(
            errors[0] if len(errors) == 1 else f"{where}: {_show(value)} matches none of {_type_label(tp)}"
        )
    if origin is typing.Literal:
        choices = typing.get_args(tp)
        if value not in choices:
            raise ConfigError(f"{where}: {_show(value)} is not one of {', '.join(map(repr, choices))}")
        return value
    if origin in (tuple, list):
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{where}: expected a list, got {_type_name(value)}")
        args = typing.get_args(tp)
        if origin is tuple and args and args[-1] is not Ellipsis:
            if len(value) != len(args):
                raise ConfigError(f"{where}: expected {len(args)} items, got {len(value)}")
            return tuple(convert(a, v, f"{where}[{i}]") for i, (a, v) in enumerate(zip(args, value)))
        item = args[0] if args else Any
        seq = [convert(item, v, f"{where}[{i}]") for i, v in enumerate(value)]
        return tuple(seq) if origin is tuple else seq
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: expected a mapping, got {_type_name(value)}")
        _, vt = typing.get_args(tp) or (Any, Any)
        return {str(k): convert(vt, v, f"{where}.{k}") for k, v in value.items()}
    if dataclasses.is_dataclass(tp):
        return from_dict(tp, value, where)
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{where}: expected true or false, got {_show(value)}")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{where}: expected an integer, got {_show(value)}")
        _check_numbers(value, where)
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{where}: expected a number, got {_show(value)}")
        _check_numbers(value, where)
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise ConfigError(f"{where}: expected a string, got {_show(value)}")
        return value
    if isinstance(tp, type) and isinstance(value, tp):
        return value
    raise ConfigError(f"{where}: expected {_type_label(tp)}, got {_show(value)}")


def _check_numbers(value, where: str) -> None:
    """Refuse non-finite floats and integers beyond 64 bits anywhere in ``value``."""
    if isinstance(value, bool):
        return
    if isinstance(value, float) and not math.isfinite(value):
        raise ConfigError(f"{where}: expected a finite number, got {value!r}")
    if isinstance(value, int) and not -INT_BOUND <= value < INT_BOUND:
        raise ConfigError(f"{where}: {value} is out of range (integers are at most 64 bits)")
    if isinstance(value, dict):
        for k, v in value.items():
            _check_numbers(v, f"{where}.{k}")
    elif isinstance(value, (list, tuple)):
        for i, v in enumerate(value):
            _check_numbers(v, f"{where}[{i}]")


def _deep_copy(data):
    if isinstance(data, dict):
        return {k: _deep_copy(v) for k, v in data.items()}
    if isinstance(data, list):
        return [_deep_copy(v) for v in data]
    return data


def _type_name(value) -> str:
    return "nothing" if value is None else type(value).__name__


def _show(value) -> str:
    return f"{value!r} ({_type_name(value)})"


def _type_label(tp) -> str:
    return getattr(tp, "__name__", None) or str(tp).replace("typing.", "")
