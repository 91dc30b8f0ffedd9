"""The messages between a crawl and its fetch processes, and how they travel.

::

    crawl ──ChildSettings──▶ child        once, first
    crawl ◀──────Ready────── child        once its HTTP session is up
    crawl ──[FetchOrder,…]─▶ child        any number of times
    crawl ◀──[Answer,…]───── child        one Answer per FetchOrder, in any order

Each message is a frozen dataclass, pickled and framed by a 4-byte length;
everything queued in one turn of the event loop travels as one list in one
frame. ``WIRE_VERSION`` changes whenever a message does: a crawl and a child
of different versions (a child started by exec from a newer install) refuse
each other instead of misreading.
"""

from __future__ import annotations

import pickle
import struct
from dataclasses import dataclass
from typing import Any

from shoal.core.config import CrawlConfig
from shoal.core.model import Request
from shoal.engine.fetch.fetcher import Attempt
from shoal.engine.pages.links import LinkSettings

__all__ = [
    "WIRE_VERSION",
    "Answer",
    "ChildSettings",
    "FetchOrder",
    "FrameReader",
    "Ready",
    "frame",
]

WIRE_VERSION = 7

_LENGTH = struct.Struct("!I")


@dataclass(frozen=True, slots=True, kw_only=True)
class ChildSettings:
    """How a child fetches: the job's fetch settings (without extraction rules, which
    travel as ``extract_rules``, their text), whether bodies come back, and, with
    ``links``, that it reads each page's links too."""

    config: CrawlConfig
    keep_body: bool
    links: LinkSettings | None
    extract_rules: list[str] | None
    save_bodies: bool
    version: int = WIRE_VERSION


@dataclass(frozen=True, slots=True, kw_only=True)
class Ready:
    """The child's HTTP session is up: it takes orders now."""

    version: int = WIRE_VERSION


# No slots: a slotted dataclass pickles through a Python-level __getstate__ that lists its
# fields on every call, and one of these crosses a pipe for every request.
@dataclass(frozen=True)
class FetchOrder:
    """Fetch ``request``, ``gap`` seconds at least after the one before to its host, or
    after ``after`` (a monotonic time) when the one before went from another process (see
    ``engine.spacing``); answer with the same ``seq``."""

    seq: int
    request: Request
    gap: float = 0.0
    after: float = float("-inf")


# No slots: a slotted dataclass pickles through a Python-level __getstate__ that lists its
# fields on every call, and one of these crosses a pipe for every request.
@dataclass(frozen=True)
class Answer:
    """The attempt made for the order numbered ``seq``."""

    seq: int
    attempt: Attempt


def frame(message: object) -> bytes:
    """One message as it travels on a pipe: length, then pickle."""
    data = pickle.dumps(message, pickle.HIGHEST_PROTOCOL)
    return _LENGTH.pack(len(data)) + data


class FrameReader:
    """Splits a byte stream back into the messages ``frame`` wrote."""

    def __init__(self) -> None:
        self._buffer = bytearray()

    def feed(self, data: bytes) -> list[Any]:
        buffer = self._buffer
        buffer += data
        messages = []
        start, end = 0, len(buffer)
        while end - start >= 4:
            (size,) = _LENGTH.unpack_from(buffer, start)
            if end - start - 4 < size:
                break
            messages.append(pickle.loads(memoryview(buffer)[start + 4 : start + 4 + size]))
            start += 4 + size
        if start:
            del buffer[:start]
        return messages
