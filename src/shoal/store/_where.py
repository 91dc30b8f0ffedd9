"""A ``ResultFilter`` as an SQL condition on the results table (alias ``r``), for both
backends: ``placeholder(value)`` records a parameter and returns its marker (``?`` for
SQLite, ``$n`` for PostgreSQL)."""

from __future__ import annotations

from collections.abc import Callable

from shoal.core.filters import FAILED_STATUS, ResultFilter

__all__ = ["result_condition"]


def result_condition(where: ResultFilter | None, placeholder: Callable[[object], str]) -> str:
    """`` AND ...`` conditions that select what ``where.matches`` selects ('' for none)."""
    if where is None or where.empty:
        return ""
    terms: list[str] = []
    if where.status_classes or where.statuses:
        either = [
            f"(r.status >= {placeholder(c * 100)} AND r.status < {placeholder(c * 100 + 100)})"
            for c in where.status_classes
        ]
        either += [f"r.status = {placeholder(code)}" for code in where.statuses]
        terms.append("(" + " OR ".join(either) + ")")
    if where.error_kinds:
        kinds = ", ".join(placeholder(kind) for kind in where.error_kinds)
        terms.append(f"r.error_kind IN ({kinds})")
    if where.failed:
        terms.append(f"(r.error_kind IS NOT NULL OR r.status >= {placeholder(FAILED_STATUS)})")
    return "".join(f" AND {term}" for term in terms)
