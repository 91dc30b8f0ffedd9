"""What a worker knows of its own leases: a row is sent only while its lease surely holds."""

from __future__ import annotations

import logging

import pytest

from shoal.engine.fleet.leases import LeaseClock

TTL = 10.0


def test_a_row_holds_for_most_of_its_lease_and_renews_extend_it() -> None:
    clock = LeaseClock(TTL)
    assert clock.holds(100.0, 108.9)
    assert not clock.holds(100.0, 109.1)  # the last tenth is kept back
    clock.renewed(103.0)  # in time: every row held is extended
    assert clock.holds(100.0, 111.9)
    clock.renewed(106.0)
    clock.renewed(109.0)
    assert clock.holds(100.0, 117.9)
    assert clock.holds(115.0, 123.9)  # leased after the last renew: its own lease counts


def test_a_renew_after_a_lease_ran_out_does_not_win_the_row_back(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = LeaseClock(TTL)
    clock.renewed(103.0)
    with caplog.at_level(logging.WARNING, logger="shoal.engine.fleet.leases"):
        clock.renewed(130.0)  # frozen for 27 s: rows leased before 121 may be taken over
    assert "leases ran out" in caplog.text
    assert not clock.holds(100.0, 131.0)
    assert not clock.holds(120.0, 131.0)
    assert clock.holds(125.0, 131.0)  # leased while the renews were late: still its own
    clock.renewed(133.0)
    assert not clock.holds(100.0, 134.0)  # lost for good, whatever comes after


def test_the_first_renew_loses_only_rows_whose_lease_ran_out_before_it() -> None:
    clock = LeaseClock(TTL)
    clock.renewed(103.0)
    assert clock.holds(100.0, 104.0)
    late = LeaseClock(TTL)
    late.renewed(120.0)
    assert not late.holds(100.0, 121.0)
    assert late.holds(115.0, 121.0)
