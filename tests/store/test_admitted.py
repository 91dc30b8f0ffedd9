"""The writer's memory of admitted fingerprints: a shortcut that is never wrong."""

from __future__ import annotations

from shoal.core.model import NewRequest
from shoal.store._admitted import AdmittedFingerprints

from .storekit import new_requests


def fingerprints(requests: list[NewRequest]) -> list[bytes]:
    return [r.fingerprint for r in requests]


def test_remembers_only_what_was_committed() -> None:
    admitted = AdmittedFingerprints()
    first = new_requests(3)
    assert admitted.unknown(1, first) == first
    admitted.remember(1, fingerprints(first))
    again = new_requests(5)  # 0..4: three known
    assert [r.url for r in admitted.unknown(1, again)] == [r.url for r in again[3:]]


def test_another_job_starts_afresh() -> None:
    admitted = AdmittedFingerprints()
    admitted.unknown(1, [])
    admitted.remember(1, fingerprints(new_requests(3)))
    assert len(admitted.unknown(2, new_requests(3))) == 3
    admitted.remember(1, fingerprints(new_requests(3)))  # job 1 is no longer the remembered one
    assert len(admitted.unknown(2, new_requests(3))) == 3
    assert len(admitted.unknown(1, new_requests(3))) == 3


def test_memory_is_bounded_to_two_generations() -> None:
    admitted = AdmittedFingerprints(generation=4)
    admitted.unknown(1, [])
    for start in range(0, 40, 3):
        admitted.remember(1, fingerprints(new_requests(3, start=start)))
    remembered = 42 - len(admitted.unknown(1, new_requests(42)))
    assert 4 <= remembered <= 8
    assert admitted.unknown(1, new_requests(3, start=39)) == []
    admitted.remember(1, fingerprints(new_requests(20, start=100)))
    assert len(admitted.unknown(1, new_requests(20, start=100))) == 16
