"""The URL lifecycle: every state, every step between states, in one table.

A frontier row has a ``State`` and, beside it, a ``Suspicion`` (crash safety: has a
process died holding it?) and a count of ``crashes``. Each way a row changes is a named
``Step``; ``STEPS`` says from which states a step may be taken and where it leads.
Anything else is illegal: ``after`` raises ``IllegalTransition``, and the stores' SQL
(built from ``sql_from``) leaves such a row as it is. ::

    pending ──LEASE──▶ leased ──COMPLETE──▶ done
       ▲  retry_wait ──LEASE──▲  │ ├──FAIL──────▶ failed
       │        ▲             │  │ └──RETRY─────▶ retry_wait
       │        └─RELEASE/────┤  │
       └──RECLAIM (attempts?)─┘  └──TAKE_OVER (lease expired) ─▶ leased

    pending, retry_wait ──LATE_COMPLETE──▶ done, ──LATE_FAIL──▶ failed

``done`` and ``failed`` are terminal: a URL that reached them is never fetched again
in the same job, and a second result for it is ignored.

A *late* result is one written by a worker whose lease lapsed and whose row was given
back (the worker stalled past its lease, or was taken for dead): the fetch was made,
so the first result for a row wins, whoever made it. A retry or a release counts only
from the worker that holds the row.

Suspicion (``SUSPICION_AFTER``): a row held by a worker that died (``RECLAIM`` with
``crashed``, or ``TAKE_OVER`` of its expired lease) becomes ``SUSPECT``; a suspect is
``MARK_STARTED`` just before its careful fetch, and a row found ``STARTED`` when its
worker died counts a crash (see ``engine.crashes``). A ``RETRY`` means the process
survived the fetch: the row is ``CLEAR`` again. A graceful ``RELEASE`` takes a mark back.

The integer values are what the stores keep.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum, StrEnum

from shoal.core.errors import IllegalTransition

__all__ = [
    "OPEN_STATES",
    "STEPS",
    "SUSPICION_AFTER",
    "TERMINAL_STATES",
    "Row",
    "State",
    "Step",
    "Suspicion",
    "after",
    "sources",
    "sql_from",
    "transition",
]


class State(IntEnum):
    PENDING = 0
    LEASED = 1
    DONE = 2
    RETRY_WAIT = 3
    FAILED = 4


class Suspicion(IntEnum):
    CLEAR = 0  # nothing is known against the row
    SUSPECT = 1  # a worker holding it died: it may be what killed it
    STARTED = 2  # marked started by a careful fetch: a death now counts a crash


class Step(StrEnum):
    LEASE = "lease"  # a due waiting row is handed to a worker
    TAKE_OVER = "take_over"  # a row whose lease expired is handed to another worker
    MARK_STARTED = "mark_started"  # the holder is about to fetch a suspect row
    COMPLETE = "complete"  # the holder records a response
    FAIL = "fail"  # the holder records a final failure
    RETRY = "retry"  # the holder sends the row back to wait for another attempt
    RELEASE = "release"  # the holder gives the row back unfinished (shutdown, requeue)
    RECLAIM = "reclaim"  # a dead worker's rows are taken back
    LATE_COMPLETE = "late_complete"  # a response from a worker whose lease lapsed
    LATE_FAIL = "late_fail"  # a final failure from a worker whose lease lapsed


_WAITING = frozenset({State.PENDING, State.RETRY_WAIT})
_LEASED = frozenset({State.LEASED})

# step: (the states it may be taken from, the states it may lead to). Where a step has
# two targets, ``after`` picks one by the row's attempts.
STEPS: dict[Step, tuple[frozenset[State], frozenset[State]]] = {
    Step.LEASE: (_WAITING, _LEASED),
    Step.TAKE_OVER: (_LEASED, _LEASED),
    Step.MARK_STARTED: (_LEASED, _LEASED),
    Step.COMPLETE: (_LEASED, frozenset({State.DONE})),
    Step.FAIL: (_LEASED, frozenset({State.FAILED})),
    Step.RETRY: (_LEASED, frozenset({State.RETRY_WAIT})),
    Step.RELEASE: (_LEASED, _WAITING),
    Step.RECLAIM: (_LEASED, _WAITING),
    Step.LATE_COMPLETE: (_WAITING, frozenset({State.DONE})),
    Step.LATE_FAIL: (_WAITING, frozenset({State.FAILED})),
}

# step: the row's suspicion after it, from the suspicion before it. Steps not listed
# leave it as it was.
SUSPICION_AFTER: dict[Step, dict[Suspicion, Suspicion]] = {
    Step.TAKE_OVER: dict.fromkeys(Suspicion, Suspicion.SUSPECT),
    Step.MARK_STARTED: dict.fromkeys(Suspicion, Suspicion.STARTED),
    Step.RETRY: dict.fromkeys(Suspicion, Suspicion.CLEAR),
    Step.RELEASE: {
        Suspicion.CLEAR: Suspicion.CLEAR,
        Suspicion.SUSPECT: Suspicion.SUSPECT,
        Suspicion.STARTED: Suspicion.SUSPECT,
    },
    Step.RECLAIM: dict.fromkeys(Suspicion, Suspicion.SUSPECT),
}
_COUNTS_A_CRASH = frozenset({Step.TAKE_OVER, Step.RECLAIM})  # from STARTED

OPEN_STATES: frozenset[State] = frozenset({State.PENDING, State.LEASED, State.RETRY_WAIT})
TERMINAL_STATES: frozenset[State] = frozenset({State.DONE, State.FAILED})


@dataclass(frozen=True, slots=True, kw_only=True)
class Row:
    """What the lifecycle knows of a frontier row."""

    state: State
    suspicion: Suspicion = Suspicion.CLEAR
    crashes: int = 0
    attempts: int = 0


def sources(*steps: Step) -> frozenset[State]:
    """The states any of ``steps`` may be taken from."""
    return frozenset().union(*(STEPS[step][0] for step in steps))


def sql_from(*steps: Step) -> str:
    """``sources(*steps)`` as an SQL test of a state column: ``IN (0, 3)``, or ``= 1`` for
    one state (SQLite matches a partial index's ``state = 1`` only in that form)."""
    states = sorted(int(s) for s in sources(*steps))
    if len(states) == 1:
        return f"= {states[0]}"
    return "IN (" + ", ".join(map(str, states)) + ")"


def transition(current: State, step: Step, *, attempts: int = 0) -> State:
    """The state ``step`` leads to from ``current``; raise ``IllegalTransition`` if the
    table does not allow it. A row given back waits for its next attempt if it had one."""
    allowed_from, targets = STEPS[step]
    if current not in allowed_from:
        raise IllegalTransition(f"illegal URL lifecycle step {step.value} from {current.name}")
    if len(targets) == 1:
        (target,) = targets
        return target
    return State.RETRY_WAIT if attempts > 0 else State.PENDING


def after(row: Row, step: Step, *, attempts: int | None = None) -> Row:
    """``row`` after ``step`` (with the attempts a retry sets); raise ``IllegalTransition``
    if the table does not allow it."""
    attempts = row.attempts if attempts is None else attempts
    state = transition(row.state, step, attempts=row.attempts)
    suspicion = SUSPICION_AFTER.get(step, {}).get(row.suspicion, row.suspicion)
    crashes = row.crashes + (step in _COUNTS_A_CRASH and row.suspicion is Suspicion.STARTED)
    return Row(state=state, suspicion=suspicion, crashes=crashes, attempts=attempts)
