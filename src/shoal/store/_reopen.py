"""Which finished rows a rerun fetches again (``Store.reopen``), for both backends.

A reopened row goes back to ``pending`` as if newly admitted (no attempts, no
crash marks) and its result is deleted in the same transaction, so that a job
never holds two results for one URL. A recrawl (``Store.revisit``) keeps the
results instead: the new answer settles against them (``shoal.core.revisit``).
"""

from __future__ import annotations

from shoal.core.errors import ConfigError
from shoal.core.ports import REOPENABLE
from shoal.core.revisit import MAX_KEEP_HISTORY

__all__ = ["check_keep_history", "reopen_condition"]

# Conditions on the finished row ``r`` and its result ``s``. A robots.txt refusal is no
# failure to try again: robots.txt decides it, and the job keeps obeying it.
_CONDITIONS: dict[str, str] = {
    "failed": "((s.error_kind IS NOT NULL AND s.error_kind <> 'robots_disallowed')"
    " OR s.status >= 500)",
    "all": "TRUE",
    "pages": "(s.error_kind IS NULL AND s.status BETWEEN 200 AND 299)",
}


def reopen_condition(which: str, *, depth_placeholder: str | None) -> str:
    """The SQL condition choosing the rows to reopen; with ``depth_placeholder`` only
    rows at that depth."""
    if which not in _CONDITIONS:
        raise ConfigError(f"reopen takes one of {', '.join(REOPENABLE)}, got {which!r}")
    condition = _CONDITIONS[which]
    if depth_placeholder is not None:
        condition += f" AND r.depth = {depth_placeholder}"
    return condition


def check_keep_history(keep: object) -> None:
    """Raise ``ConfigError`` unless ``keep`` is a whole number of results to keep."""
    if isinstance(keep, bool) or not isinstance(keep, int) or not 0 <= keep <= MAX_KEEP_HISTORY:
        raise ConfigError(
            f"keep_history must be a whole number from 0 to {MAX_KEEP_HISTORY}, got {keep!r}"
        )
