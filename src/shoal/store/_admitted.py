"""A bounded memory of fingerprints a job has certainly admitted.

A crawl discovers the same links over and over (navigation, footers): most
discovered requests are duplicates. Asking the database about each costs a
few microseconds of the single writer's time; this set answers most of them
for a tenth of that. It is only ever a shortcut, never the authority: a
fingerprint is remembered only after a commit put it in the store (admitted
or found there; not one an admission limit kept out), and request rows are
deleted only with their job (``forget``), whose id no later job takes, so a hit is
always right; a miss just asks the database.

Memory is bounded: two generations of at most ``generation`` entries each;
when the young one fills, the old one is dropped. Only the most recently used
job is remembered. Not thread-safe: the owning writer thread uses it alone.
"""

from __future__ import annotations

from collections.abc import Sequence

from shoal.core.model import NewRequest

__all__ = ["AdmittedFingerprints"]


class AdmittedFingerprints:
    def __init__(self, generation: int = 65_536) -> None:
        self._generation = generation
        self._job_id: int | None = None
        self._young: set[bytes] = set()
        self._old: set[bytes] = set()

    def unknown(self, job_id: int, requests: Sequence[NewRequest]) -> Sequence[NewRequest]:
        """``requests`` without those certainly admitted to ``job_id`` already."""
        if job_id != self._job_id:
            self._job_id, self._young, self._old = job_id, set(), set()
            return requests
        young, old = self._young, self._old
        if not young:
            return requests
        return [r for r in requests if r.fingerprint not in young and r.fingerprint not in old]

    def forget(self, job_id: int) -> None:
        """Drop what is remembered of ``job_id``: its rows were deleted."""
        if job_id == self._job_id:
            self._job_id, self._young, self._old = None, set(), set()

    def remember(self, job_id: int, fingerprints: Sequence[bytes]) -> None:
        """Call after the commit that put ``fingerprints`` in ``job_id`` (admitted them or
        found them there); never with one a limit kept out, which may be admitted later."""
        if job_id != self._job_id:
            return
        young = self._young
        room = self._generation - len(young)
        if len(fingerprints) >= room:
            self._old, young = young, set()
            self._young = young
        young.update(fingerprints[-self._generation :])
