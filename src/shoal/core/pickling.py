"""Pickling for the slotted dataclasses that cross a pipe once per page.

A slotted dataclass pickles as a dict of its slots (a frozen one through a Python-level
``__getstate__`` and ``__setstate__``), rebuilt on load one attribute at a time; an
object with a dozen or two fields, sent for every page, costs several microseconds a
side. ``pickled_by_values`` makes such a class pickle as the tuple of its field values
and load through a function generated for it, which stores each slot directly: by
plain assignment, or for a frozen class through the slot's descriptor (which its
``__setattr__`` would refuse).
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from dataclasses import fields, is_dataclass
from typing import Any, TypeVar

__all__ = ["pickled_by_values"]

T = TypeVar("T")


def pickled_by_values(cls: type[T]) -> type[T]:
    """Make ``cls`` (a slotted dataclass of two fields or more) pickle as the tuple of its
    field values.

    The loader is a static method ``cls._from_values``, so a pickle names it by the
    class, which both ends import.
    """
    if not is_dataclass(cls) or "__slots__" not in cls.__dict__:
        raise TypeError(f"{cls.__name__} is not a slotted dataclass")
    names = tuple(f.name for f in fields(cls))
    if len(names) < 2:
        raise TypeError(f"{cls.__name__} has fewer than two fields")
    values = operator.attrgetter(*names)
    namespace: dict[str, Any] = {"new": object.__new__, "cls": cls}
    lines = ["def _from_values(values):", "    made = new(cls)"]
    for i, name in enumerate(names):
        if cls.__dataclass_params__.frozen:  # type: ignore[attr-defined]
            namespace[f"set_{name}"] = cls.__dict__[name].__set__
            lines.append(f"    set_{name}(made, values[{i}])")
        else:
            lines.append(f"    made.{name} = values[{i}]")
    lines.append("    return made")
    exec("\n".join(lines), namespace)  # noqa: S102 - the source is built from field names
    from_values: Callable[[tuple[object, ...]], T] = namespace["_from_values"]
    from_values.__module__ = cls.__module__
    from_values.__qualname__ = f"{cls.__qualname__}._from_values"

    def __reduce__(self: T) -> tuple[Callable[[tuple[object, ...]], T], tuple[object]]:
        return from_values, (values(self),)

    setattr(cls, "_from_values", staticmethod(from_values))  # noqa: B010
    setattr(cls, "__reduce__", __reduce__)  # noqa: B010
    return cls
