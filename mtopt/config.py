"""Loading frozen config dataclasses from YAML, with validation of every key.

Every component of mtopt is configured by one frozen dataclass whose fields carry a docstring
(a string literal right below the field). This module turns a YAML mapping into such a
dataclass, recursively for nested config dataclasses, and refuses unknown keys with a message
that lists the allowed ones. Command-line overrides are applied on top by :mod:`mtopt.cli`
(through tyro, which reads the same field docstrings as help text).
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TypeVar

import yaml

from mtopt.errors import MtoptError

T = TypeVar("T")


class ConfigError(MtoptError, ValueError):
    """A config file or value is invalid; the message names the key and what is allowed."""


def _is_dataclass_type(tp: Any) -> bool:
    return isinstance(tp, type) and dataclasses.is_dataclass(tp)


def _coerce(value: Any, tp: Any, where: str, base: Any = None) -> Any:
    """Convert a YAML value to the annotated type ``tp`` (dataclasses, tuples, unions); a
    mapping for a dataclass overrides the fields of ``base`` when given (the field's default)."""
    origin = typing.get_origin(tp)
    if _is_dataclass_type(tp):
        if not isinstance(value, Mapping):
            raise ConfigError(f"{where}: expected a mapping for {tp.__name__}, got {value!r}")
        return from_dict(tp, value, where, base if isinstance(base, tp) else None)
    if origin in (typing.Union, types.UnionType):
        args = typing.get_args(tp)
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _coerce(value, arg, where)
            except (ConfigError, TypeError, ValueError) as exc:
                errors.append(str(exc))
        raise ConfigError(f"{where}: {value!r} does not match {tp}: {'; '.join(errors)}")
    if origin is typing.Literal:
        allowed = typing.get_args(tp)
        if value not in allowed:
            raise ConfigError(f"{where}: {value!r} is not one of the allowed values {allowed}")
        return value
    if origin is tuple:
        if not isinstance(value, list | tuple):
            raise ConfigError(f"{where}: expected a list, got {value!r}")
        args = typing.get_args(tp)
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_coerce(v, args[0], f"{where}[{i}]") for i, v in enumerate(value))
        if len(args) != len(value):
            raise ConfigError(f"{where}: expected {len(args)} items, got {len(value)}")
        return tuple(
            _coerce(v, a, f"{where}[{i}]") for i, (a, v) in enumerate(zip(args, value, strict=True))
        )
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(f"{where}: expected a number, got {value!r}")
        return float(value)
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{where}: expected an integer, got {value!r}")
        return value
    if tp is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{where}: expected true or false, got {value!r}")
        return value
    if tp is str:
        if not isinstance(value, str):
            raise ConfigError(f"{where}: expected a string, got {value!r}")
        return value
    return value


def _field_default(field: dataclasses.Field) -> Any:
    if field.default is not dataclasses.MISSING:
        return field.default
    if field.default_factory is not dataclasses.MISSING:
        return field.default_factory()
    return None


def from_dict(cls: type[T], data: Mapping[str, Any], where: str = "", base: T | None = None) -> T:
    """Build the config dataclass ``cls`` from a mapping, recursively.

    Keys may use ``-`` or ``_``. Unknown keys raise :class:`ConfigError` listing the allowed
    keys; missing keys keep the defaults; values are type-checked against the annotations; the
    dataclass's own ``__post_init__`` validation then runs. The defaults are ``base``'s fields
    when given, else the dataclass's; a nested section overrides its field's default *value*
    (as a command-line flag does), so e.g. a demo's ``policy: {cem: ...}`` keeps the demo's
    collection ε instead of falling back to :class:`PolicyConfig`'s class defaults.
    """
    if not _is_dataclass_type(cls):
        raise TypeError(f"{cls!r} is not a dataclass")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    kwargs: dict[str, Any] = {} if base is None else {name: getattr(base, name) for name in fields}
    for key, value in data.items():
        name = str(key).replace("-", "_")
        path = f"{where}.{name}" if where else name
        if name not in fields:
            raise ConfigError(
                f"unknown config key {path!r} for {cls.__name__}; allowed keys: {sorted(fields)}"
            )
        default = kwargs[name] if name in kwargs else _field_default(fields[name])
        kwargs[name] = _coerce(value, hints[name], path, default)
    try:
        return cls(**kwargs)
    except TypeError as exc:  # a required field is missing
        raise ConfigError(f"{where or cls.__name__}: {exc}") from exc


def to_dict(config: Any) -> dict[str, Any]:
    """A plain, YAML-serialisable dict of a config dataclass (tuples become lists)."""

    def plain(v: Any) -> Any:
        if dataclasses.is_dataclass(v) and not isinstance(v, type):
            return {f.name: plain(getattr(v, f.name)) for f in dataclasses.fields(v)}
        if isinstance(v, tuple | list):
            return [plain(x) for x in v]
        return v

    return plain(config)


def load_config(cls: type[T], path: str | Path) -> T:
    """Load ``cls`` from the YAML file at ``path`` (an empty file gives the defaults)."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file {str(path)!r} does not exist or is not a file")
    try:
        with path.open() as fh:
            data = yaml.safe_load(fh)
    except yaml.YAMLError as exc:
        where = getattr(exc, "problem_mark", None)
        at = f" at line {where.line + 1}, column {where.column + 1}" if where else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ConfigError(f"config file {str(path)!r} is not valid YAML{at}: {problem}") from exc
    if data is None:
        data = {}
    if not isinstance(data, Mapping):
        raise ConfigError(f"config file {str(path)!r} must hold a mapping, got {type(data)}")
    return from_dict(cls, data)


def save_config(config: Any, path: str | Path) -> None:
    """Write a config dataclass to YAML (used to record the exact config of a run)."""
    Path(path).write_text(yaml.safe_dump(to_dict(config), sort_keys=False))


def refuse_set_fields(config: Any, names: tuple[str, ...], where: str, by: str) -> None:
    """Raise :class:`ConfigError` if ``config`` (a nested config of a composite) sets one of
    ``names`` away from its default: the composite ``by`` sets those fields itself, and a value
    the user gave would otherwise be silently ignored."""
    defaults = type(config)()
    for name in names:
        if getattr(config, name) != getattr(defaults, name):
            raise ConfigError(
                f"{where}.{name} is set by {by} itself (got {getattr(config, name)!r}); "
                f"leave it at its default {getattr(defaults, name)!r}"
            )
