"""Bounds on free-form JSON fields (conversation metadata, notification and template data).

A free-form field is typed `FreeJson`: any JSON object, but nested at most `max_depth`
levels and at most `max_bytes` encoded. Without these a single row nested hundreds of
levels deep broke every later read of a list that contained it. The limits are settings,
so the check runs right after decoding, with the settings at hand (`free_json_problem`).
"""

from __future__ import annotations

import functools
import typing
from typing import Annotated, Any

import msgspec


class _FreeJsonMarker:
    """Marks a field of a request Struct as free-form JSON (see `free_json_problem`)."""


FREE_JSON = _FreeJsonMarker()
FreeJson = Annotated[
    dict[str, Any],
    msgspec.Meta(
        description="Free-form JSON object: at most JSON_MAX_DEPTH levels deep (default 8) "
        "and JSON_FIELD_MAX_BYTES encoded (default 16384); 422 above"
    ),
    FREE_JSON,
]


@functools.cache
def _free_fields(kind: type) -> tuple[str, ...]:
    """The names of `kind`'s fields typed FreeJson (or FreeJson | None)."""
    hints = typing.get_type_hints(kind, include_extras=True)
    names = []
    for name in msgspec.structs.fields(kind):
        hint = hints.get(name.name)
        options = typing.get_args(hint) if typing.get_origin(hint) is not Annotated else (hint,)
        for option in options or (hint,):
            if typing.get_origin(option) is Annotated and FREE_JSON in option.__metadata__:
                names.append(name.encode_name)
                break
    return tuple(names)


def _deeper_than(value: object, limit: int) -> bool:
    """True when `value` nests containers more than `limit` levels; stops looking there."""
    if isinstance(value, dict):
        children: typing.Iterable[object] = value.values()
    elif isinstance(value, list):
        children = value
    else:
        return False
    if limit == 0:
        return True
    return any(_deeper_than(child, limit - 1) for child in children)


def free_json_problem(obj: msgspec.Struct, max_depth: int, max_bytes: int) -> str | None:
    """What is wrong with `obj`'s free-form fields, naming the field; None when all is well."""
    for wire_name in _free_fields(type(obj)):
        attr = _attribute(type(obj), wire_name)
        value = getattr(obj, attr)
        if value is None:
            continue
        if _deeper_than(value, max_depth):
            return f"`{wire_name}` is nested more than {max_depth} levels deep"
        if len(msgspec.json.encode(value)) > max_bytes:
            return f"`{wire_name}` is larger than {max_bytes} bytes encoded"
    return None


@functools.cache
def _attribute(kind: type, wire_name: str) -> str:
    for field in msgspec.structs.fields(kind):
        if field.encode_name == wire_name:
            return field.name
    raise KeyError(wire_name)
