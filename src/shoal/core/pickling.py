"""Pickling for the slotted dataclasses that cross a pipe once per page.

A slotted dataclass pickles as a dict of its slots, rebuilt on load by setting each
attribute from C through its descriptor; an object with a few dozen fields, sent for
every page, costs several microseconds a side. ``pickled_by_values`` makes such a class
pickle as a tuple of its field values and load through a function generated for it,
which stores each slot with plain attribute assignments.
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from dataclasses import fields, is_dataclass
from typing import Any, TypeVar

__all__ = ["pickled_by_values"]

T = TypeVar("T")


def pickled_by_values(cls: type[T]) -> type[T]:
    """Make ``cls`` (a mutable slotted dataclass) pickle as the tuple of its field values.

    The loader is a static method ``cls._from_values``, so a pickle names it by the
    class, which both ends import. A frozen class is refused: its fields cannot be
    assigned.
    """
    if not is_dataclass(cls) or "__slots__" not in cls.__dict__:
        raise TypeError(f"{cls.__name__} is not a slotted dataclass")
    if cls.__dataclass_params__.frozen:  # type: ignore[attr-defined]
        raise TypeError(f"{cls.__name__} is frozen")
    names = tuple(f.name for f in fields(cls))
    values = operator.attrgetter(*names) if len(names) > 1 else lambda o: (getattr(o, names[0]),)
    lines = ["def _from_values(values):", "    made = new(cls)"]
    lines += [f"    made.{name} = values[{i}]" for i, name in enumerate(names)]
    lines.append("    return made")
    namespace: dict[str, Any] = {"new": object.__new__, "cls": cls}
    exec("\n".join(lines), namespace)  # noqa: S102 - the source is built from field names
    from_values: Callable[[tuple[object, ...]], T] = namespace["_from_values"]
    from_values.__module__ = cls.__module__
    from_values.__qualname__ = f"{cls.__qualname__}._from_values"

    def __reduce__(self: T) -> tuple[Callable[[tuple[object, ...]], T], tuple[object]]:
        return from_values, (values(self),)

    setattr(cls, "_from_values", staticmethod(from_values))  # noqa: B010
    setattr(cls, "__reduce__", __reduce__)  # noqa: B010
    return cls
