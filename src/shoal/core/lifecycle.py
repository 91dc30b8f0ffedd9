"""The URL lifecycle: every state and every allowed transition, in one table.

::

    pending ──lease──▶ leased ──complete──▶ done
       ▲                 │  ├──fail──────▶ failed
       │                 │  └──retry─────▶ retry_wait ──lease──▶ leased
       └──release/expire─┘

``done`` and ``failed`` are terminal: a URL that reached them is never
fetched again in the same job. The integer values are what the stores keep.
"""

from __future__ import annotations

from enum import IntEnum

from shoal.core.errors import IllegalTransition

__all__ = ["OPEN_STATES", "TERMINAL_STATES", "TRANSITIONS", "State", "transition"]


class State(IntEnum):
    PENDING = 0
    LEASED = 1
    DONE = 2
    RETRY_WAIT = 3
    FAILED = 4


TRANSITIONS: dict[State, frozenset[State]] = {
    State.PENDING: frozenset({State.LEASED, State.FAILED}),
    State.RETRY_WAIT: frozenset({State.LEASED, State.FAILED}),
    State.LEASED: frozenset({State.DONE, State.FAILED, State.RETRY_WAIT, State.PENDING}),
    State.DONE: frozenset(),
    State.FAILED: frozenset(),
}

OPEN_STATES: frozenset[State] = frozenset({State.PENDING, State.LEASED, State.RETRY_WAIT})
TERMINAL_STATES: frozenset[State] = frozenset({State.DONE, State.FAILED})


def transition(current: State, target: State) -> State:
    """Return ``target`` if the table allows ``current → target``, else raise."""
    if target not in TRANSITIONS[current]:
        raise IllegalTransition(f"illegal URL state transition {current.name} → {target.name}")
    return target
