"""Secrets a user gives with requests, and what of them a store may keep.

**The rule.** A request header's value is written to the store only when its
name is one of ``STORED_HEADERS``: content negotiation and caching headers
that carry no credentials (``Accept``, ``Content-Type``, ``If-None-Match``,
...). Every other header a request carries (``Authorization``, ``Cookie``,
``X-Api-Key``, anything else a JSON input line gives, and the Basic auth made
from ``user:pass@`` in a URL) is stored as ``<redacted>`` and held in memory
by the process that read it (``HeldSecrets``), which puts the value back just
before the request is sent. An allow-list rather than a list of secret-looking
names: a header a list did not foresee (``X-Client-Id``) stays out too.

Credentials in a URL's userinfo are taken out of the URL (``split_userinfo``)
and become that request's ``Authorization: Basic`` header: no stored or
exported URL, and no log line, holds them. Like every header of a request,
they are sent to the request's origin only (``engine.redirects``).

Held values live as long as the process that read the input: a resumed run
reads its input again before fetching (a crawl admits its seeds again, whose
credentials ``JobSpec.seed_credentials`` holds outside the job's record); a
``shoal worker`` that joins a job sends such requests without them.
"""

from __future__ import annotations

import base64
import dataclasses
from urllib.parse import unquote

from shoal.core.model import Header, NewRequest, Request
from shoal.core.urls import canonical_fingerprint, split_userinfo

__all__ = [
    "REDACTED",
    "STORED_HEADERS",
    "HeldSecrets",
    "basic_authorization",
    "split_userinfo",
    "stored_form",
    "without_redacted",
]

REDACTED = "<redacted>"

STORED_HEADERS = frozenset(
    {
        "accept",
        "accept-charset",
        "accept-encoding",
        "accept-language",
        "cache-control",
        "content-language",
        "content-type",
        "if-match",
        "if-modified-since",
        "if-none-match",
        "if-range",
        "if-unmodified-since",
        "pragma",
        "range",
        "user-agent",
    }
)


def basic_authorization(userinfo: str) -> Header:
    """The ``Authorization`` header for a URL's ``user:pass`` (percent-decoded first)."""
    user, _, password = userinfo.partition(":")
    token = f"{unquote(user)}:{unquote(password)}".encode()
    return ("Authorization", "Basic " + base64.b64encode(token).decode("ascii"))


def stored_form(headers: tuple[Header, ...]) -> tuple[Header, ...]:
    """``headers`` as a store keeps them: values not in ``STORED_HEADERS`` redacted."""
    return tuple(
        (name, value if name.lower() in STORED_HEADERS else REDACTED) for name, value in headers
    )


class HeldSecrets:
    """The header values a store does not keep, by request, for the process that read them.

    ``hold`` gives the form of a request to store and keeps its redacted values;
    ``restore`` (the crawler's ``before_fetch``) puts them back into a leased request.
    Values are interned: a million requests with one API token hold one copy of it.
    """

    def __init__(self) -> None:
        self._by_request: dict[bytes, tuple[Header, ...]] = {}
        self._interned: dict[tuple[Header, ...], tuple[Header, ...]] = {}

    def __len__(self) -> int:
        return len(self._by_request)

    def hold(self, request: NewRequest) -> NewRequest:
        headers = request.headers
        if not headers:
            return request
        stored = stored_form(headers)
        if stored == headers:
            return request
        secret = tuple(h for h in headers if h[0].lower() not in STORED_HEADERS)
        self._by_request[request.fingerprint] = self._interned.setdefault(secret, secret)
        return dataclasses.replace(request, headers=stored)

    def restore(self, request: Request) -> Request:
        """``request`` with the values held for it put back; a redacted value held
        elsewhere (or nowhere) is left for ``without_redacted``."""
        headers = request.headers
        if not self._by_request or not headers or REDACTED not in (v for _, v in headers):
            return request
        key = canonical_fingerprint(request.url, method=request.method, body=request.body)
        held = self._by_request.get(key)
        if held is None:
            return request
        values = iter(held)
        restored: list[Header] = []
        for name, value in headers:
            if value == REDACTED:
                # Held in the order they were given, under the same names.
                for held_name, held_value in values:
                    if held_name == name:
                        value = held_value
                        break
            restored.append((name, value))
        return dataclasses.replace(request, headers=tuple(restored))


def without_redacted(request: Request) -> Request:
    """``request`` without the headers whose value no process put back (another process
    read the input): they are not sent at all rather than sent as ``<redacted>``."""
    headers = request.headers
    if not headers or REDACTED not in (v for _, v in headers):
        return request
    return dataclasses.replace(request, headers=tuple(h for h in headers if h[1] != REDACTED))
