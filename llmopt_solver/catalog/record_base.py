"""Catalog records as frozen dataclasses whose edge validation is pydantic, built on demand.

A record class is a ``@dataclass(frozen=True)`` subclass of ``Record``; each field's constraints
(``gt``, ``ge``, ``le``, ``min_length``, ``description``) go in ``rule(...)``. Importing a record
module never imports pydantic (``solve`` starts ~0.2 s faster): a user's file is validated by a
pydantic model generated from the dataclass the first time one is read (``model_validate``, same
errors as a hand-written model), while the package's own data, trusted and checked against that
validation by tests/test_record_base.py, is converted cheaply (``trusted``).
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Callable
from functools import cache
from typing import Any, ClassVar, Literal, Self, cast

_MISSING: Any = dataclasses.MISSING


def rule(default: Any = _MISSING, *, default_factory: Any = _MISSING, **constraints: Any) -> Any:
    """Returns a dataclass field with pydantic ``Field`` constraints kept for edge validation."""
    return dataclasses.field(default=default, default_factory=default_factory, metadata={"rule": constraints})


class Record:
    """Mixin of catalog records: pydantic-style ``model_validate``/``model_dump``/``model_copy``."""

    # pydantic ConfigDict of the edge model (extra keys, nan/inf)
    edge_config: ClassVar[dict[str, Any]] = {"extra": "forbid", "frozen": True}

    @classmethod
    def model_validate(cls, data: Any) -> Self:
        """Returns the record for untrusted ``data``; pydantic ValidationError when it breaks a rule."""
        return _from_edge(cls, _edge_model(cast(Any, cls)).model_validate(data))

    @classmethod
    def trusted(cls, data: dict[str, Any]) -> Self:
        """Returns the record for package data, converting types as validation would, checking nothing."""
        conv = _converters(cast(Any, cls))
        return cls(**{k: conv[k](v) for k, v in data.items()})

    def model_dump(self, mode: Literal["python", "json"] = "python", exclude: set[str] | None = None) -> dict[str, Any]:
        """Returns the fields as a dict (nested records as dicts; tuples as lists in ``json`` mode)."""
        return {f.name: _dump(getattr(self, f.name), mode) for f in dataclasses.fields(self)  # type: ignore[arg-type]
                if not exclude or f.name not in exclude}

    def model_copy(self, update: dict[str, Any] | None = None) -> Self:
        """Returns a copy with ``update``'s fields replaced (not validated, as pydantic's)."""
        return dataclasses.replace(self, **(update or {}))  # type: ignore[type-var]


_SCALARS = (float, int, str, bool, type(None))


def _dump(v: Any, mode: str) -> Any:
    if type(v) in _SCALARS:
        return v
    if isinstance(v, Record):
        return v.model_dump(mode)  # type: ignore[arg-type]
    if isinstance(v, tuple):
        items = [_dump(x, mode) for x in v]
        return items if mode == "json" else tuple(items)
    if isinstance(v, dict):
        return {k: _dump(x, mode) for k, x in v.items()}
    return v


def _hints(cls: type) -> dict[str, Any]:
    """Returns the field types of record ``cls`` (evaluated only when a module postpones them)."""
    fields = dataclasses.fields(cls)
    if any(isinstance(f.type, str) for f in fields):
        return typing.get_type_hints(cls)
    return {f.name: f.type for f in fields}


def _is_record(tp: Any) -> bool:
    return isinstance(tp, type) and issubclass(tp, Record)


@cache
def _edge_model(cls: type) -> Any:
    """Returns the pydantic model with ``cls``'s fields, types, defaults and rules."""
    from pydantic import ConfigDict, Field, create_model

    fields: dict[str, Any] = {}
    hints = _hints(cls)
    for f in dataclasses.fields(cls):
        kw = dict(f.metadata.get("rule", {}))
        if f.default is not _MISSING:
            kw["default"] = f.default
        elif f.default_factory is not _MISSING:
            kw["default_factory"] = f.default_factory
        fields[f.name] = (_edge_type(hints[f.name]), Field(**kw))
    return create_model(cls.__name__, __config__=ConfigDict(**cls.edge_config), **fields)  # type: ignore[attr-defined]


def _edge_type(tp: Any) -> Any:
    """Returns ``tp`` with record classes replaced by their edge models (in unions too)."""
    if _is_record(tp):
        return _edge_model(tp)
    args = typing.get_args(tp)
    if isinstance(tp, types.UnionType) and any(_is_record(a) for a in args):
        out = _edge_type(args[0])
        for a in args[1:]:
            out = out | _edge_type(a)
        return out
    return tp


def _from_edge(cls: type, m: Any) -> Any:
    """Returns the ``cls`` record of validated edge model ``m``."""
    hints = _hints(cls)
    kw = {}
    for f in dataclasses.fields(cls):
        v = getattr(m, f.name)
        if not isinstance(v, Record) and hasattr(type(v), "model_fields"):  # a nested edge model
            v = _from_edge(next(a for a in (hints[f.name], *typing.get_args(hints[f.name])) if _is_record(a)), v)
        kw[f.name] = v
    return cls(**kw)


@cache
def _converters(cls: type) -> dict[str, Callable[[Any], Any]]:
    """Returns per field the conversion validation would make to well-formed JSON data."""
    hints = _hints(cls)
    return {f.name: _converter(hints[f.name]) for f in dataclasses.fields(cls)}


def _same(v: Any) -> Any:
    return v


def _converter(tp: Any) -> Callable[[Any], Any]:
    if _is_record(tp):
        return lambda v: v if isinstance(v, Record) else tp.trusted(v)
    if tp is float:
        return float
    if tp is int:
        return int
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if isinstance(tp, types.UnionType) and type(None) in args:
        inner = _converter(next(a for a in args if a is not type(None)))
        return lambda v: None if v is None else inner(v)
    if origin is tuple:
        item = _converter(args[0]) if args and (len(args) == 2 and args[1] is Ellipsis or len(set(args)) == 1) else _same
        return lambda v: tuple(item(x) for x in v)
    if origin is dict:
        val = _converter(args[1])
        return lambda v: {k: val(x) for k, x in v.items()}
    return _same


def validation_error() -> type[Exception]:
    """Returns pydantic's ValidationError (imported on first need: ``except validation_error():``)."""
    from pydantic import ValidationError

    return ValidationError
