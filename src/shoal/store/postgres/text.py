"""Text PostgreSQL cannot store, made storable: NUL characters and lone surrogates.

Headers are left alone: they are stored as ASCII JSON text, where every character
is storable (escaped), so they keep every byte a server sent.

A ``text`` column refuses both; the store runs a write again on values cleaned
here (each such character becomes U+FFFD) only after it failed on one (see
``PostgresStore._write_text_safe``), so clean text never pays for the copy.
"""

from __future__ import annotations

from dataclasses import replace

from shoal.core.model import Completion, NewRequest
from shoal.store._codec import storable

__all__ = ["clean_completion", "clean_request", "storable_text"]


def storable_text(value: str) -> str:
    return storable(value).replace("\x00", "\ufffd")


def _clean(value: str | None) -> str | None:
    return None if value is None else storable_text(value)


def clean_request(r: NewRequest) -> NewRequest:
    return replace(
        r,
        url=storable_text(r.url),
        host=storable_text(r.host),
        parent_url=_clean(r.parent_url),
    )


def clean_completion(batch: Completion) -> Completion:
    results = [
        replace(
            r,
            url=storable_text(r.url),
            final_url=_clean(r.final_url),
            redirects=tuple(storable_text(u) for u in r.redirects),
            error=_clean(r.error),
            content_type=_clean(r.content_type),
            parent_url=_clean(r.parent_url),
            encoding=_clean(r.encoding),
            proxy=_clean(r.proxy),
            etag=_clean(r.etag),
            last_modified=_clean(r.last_modified),
        )
        for r in batch.results
    ]
    retries = [replace(u, error=_clean(u.error)) for u in batch.retries]
    return replace(batch, results=results, retries=retries)
