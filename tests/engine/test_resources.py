"""run_loop: the garbage collector's thresholds while a loop runs, and after."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from shoal.engine.resources import run_loop


@pytest.fixture
def default_thresholds() -> Iterator[tuple[int, int, int]]:
    before = gc.get_threshold()
    gc.set_threshold(700, 10, 10)
    yield gc.get_threshold()
    gc.set_threshold(*before)


async def _thresholds() -> tuple[int, int, int]:
    return gc.get_threshold()


def test_young_generation_is_collected_less_often_while_the_loop_runs(
    default_thresholds: tuple[int, int, int],
) -> None:
    young, middle, old = run_loop(_thresholds())
    assert young > default_thresholds[0]
    assert (middle, old) == default_thresholds[1:]


def test_thresholds_are_restored_after_the_loop(
    default_thresholds: tuple[int, int, int],
) -> None:
    run_loop(_thresholds())
    assert gc.get_threshold() == default_thresholds


async def _fail() -> None:
    raise LookupError("boom")


def test_thresholds_are_restored_when_the_loop_raises(
    default_thresholds: tuple[int, int, int],
) -> None:
    with pytest.raises(LookupError):
        run_loop(_fail())
    assert gc.get_threshold() == default_thresholds


def test_a_higher_threshold_already_set_is_kept(
    default_thresholds: tuple[int, int, int],
) -> None:
    gc.set_threshold(1_000_000, 10, 10)
    assert run_loop(_thresholds())[0] == 1_000_000
