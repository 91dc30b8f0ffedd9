"""The lifecycle table: what it allows, what it forbids, and what suspicion does."""

from __future__ import annotations

import pytest

from shoal.core.errors import IllegalTransition
from shoal.core.lifecycle import (
    OPEN_STATES,
    STEPS,
    TERMINAL_STATES,
    Row,
    State,
    Step,
    Suspicion,
    after,
    sql_from,
    transition,
)


@pytest.mark.parametrize("step", list(Step))
@pytest.mark.parametrize("state", list(State))
def test_every_step_from_every_state_is_allowed_or_raises(state: State, step: Step) -> None:
    allowed_from, targets = STEPS[step]
    if state in allowed_from:
        assert transition(state, step) in targets
    else:
        with pytest.raises(IllegalTransition, match=step.value):
            transition(state, step)


def test_terminal_states_have_no_way_out() -> None:
    for state in TERMINAL_STATES:
        assert not any(state in allowed_from for allowed_from, _ in STEPS.values())
    assert OPEN_STATES | TERMINAL_STATES == set(State)


def test_a_row_given_back_waits_for_its_next_attempt_if_it_had_one() -> None:
    assert transition(State.LEASED, Step.RELEASE, attempts=0) is State.PENDING
    assert transition(State.LEASED, Step.RELEASE, attempts=2) is State.RETRY_WAIT
    assert transition(State.LEASED, Step.RECLAIM, attempts=1) is State.RETRY_WAIT


def test_a_death_counts_a_crash_only_for_a_row_marked_started() -> None:
    leased = after(Row(state=State.PENDING), Step.LEASE)
    reclaimed = after(leased, Step.RECLAIM)
    assert (reclaimed.suspicion, reclaimed.crashes) == (Suspicion.SUSPECT, 0)
    marked = after(after(reclaimed, Step.LEASE), Step.MARK_STARTED)
    assert marked.suspicion is Suspicion.STARTED
    taken = after(marked, Step.TAKE_OVER)
    assert (taken.state, taken.suspicion, taken.crashes) == (State.LEASED, Suspicion.SUSPECT, 1)
    released = after(after(taken, Step.MARK_STARTED), Step.RELEASE)
    assert (released.suspicion, released.crashes) == (Suspicion.SUSPECT, 1)
    retried = after(after(released, Step.LEASE), Step.RETRY, attempts=1)
    assert (retried.state, retried.suspicion, retried.attempts) == (
        State.RETRY_WAIT,
        Suspicion.CLEAR,
        1,
    )


def test_sql_from_tests_a_state_column_for_the_sources() -> None:
    assert sql_from(Step.LEASE) == "IN (0, 3)"
    assert sql_from(Step.COMPLETE, Step.LATE_COMPLETE) == "IN (0, 1, 3)"
    assert sql_from(Step.TAKE_OVER) == "= 1"
