"""Headers and credentials a job adds to what it sends, and what of them a job stores.

``-H 'Name: value'`` goes to every host; ``--header-for HOST 'Name: value'``
to that host only; ``--user USER:PASS`` (basic auth) and ``--bearer TOKEN``
only to the *credential hosts*: a crawl's seed hosts, or, for a fetch, the
host of each URL of the input (the URLs a user asked for, as curl sends
``--user`` to the URL it is given). A ``-H`` naming a credential header
(Authorization, Cookie, Proxy-Authorization) is held to the credential
hosts too, so that a crawl never hands a token to a site it links to.

Values are sent, never stored: a job records ``summary()`` (header names and
hosts, no value), compares it on a rerun, and a spec rebuilt from a record
knows only what was ``withheld``: it cannot run until the values are given
again.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace

from shoal.core.errors import ConfigError
from shoal.core.model import Header, Request

__all__ = ["CREDENTIAL_HEADERS", "ExtraHeaders", "parse_header"]

CREDENTIAL_HEADERS = frozenset({"authorization", "cookie", "proxy-authorization"})
"""Header names that carry credentials: sent only to the credential hosts."""

_TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
_BAD_VALUE = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")
_FRAMING = frozenset({"content-length", "transfer-encoding", "host", "connection"})


def parse_header(text: str) -> Header:
    """``'Name: value'`` as a header pair; a bad one raises ``ConfigError``."""
    name, colon, value = text.partition(":")
    name = name.strip()
    if not colon or not name:
        raise ConfigError(f"a header is 'Name: value', got {_shown(text)}")
    header = (name, value.strip())
    _check(header)
    return header


def _check(header: Header) -> None:
    name, value = header
    if not _TOKEN.fullmatch(name):
        raise ConfigError(f"invalid header name {name!r}")
    if name.lower() in _FRAMING:
        raise ConfigError(f"header {name!r} is set by shoal")
    if _BAD_VALUE.search(value):
        raise ConfigError(f"header {name!r}: value contains a control character (CR, LF...)")


def _shown(text: str) -> str:
    """A bad header named without its value (it may be a secret)."""
    head = text.split(":", 1)[0].strip()
    return repr(head[:40]) if head else "an empty string"


def _host(host: str) -> str:
    key = host.strip().lower().rstrip(".")
    if not key or any(c in key for c in "/:@ ") and not key.startswith("["):
        raise ConfigError(f"--header-for takes a host name without scheme or port, got {host!r}")
    return key


@dataclass(frozen=True, kw_only=True, slots=True)
class ExtraHeaders:
    """What a job adds to every request it sends (see the module docstring).

    ``every_host``: ``-H`` headers. ``per_host``: ``(host, name, value)`` of
    ``--header-for``. ``basic``: ``(user, password)``. ``bearer``: a token.
    ``withheld``: the summary of a stored job whose values were not stored
    (a spec rebuilt from a record); such a spec sends nothing until the values
    are given again (``missing``).
    """

    every_host: tuple[Header, ...] = ()
    per_host: tuple[tuple[str, str, str], ...] = ()
    basic: tuple[str, str] | None = None
    bearer: str | None = None
    withheld: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        for header in self.every_host:
            _check(header)
        hosts = []
        for host, name, value in self.per_host:
            _check((name, value))
            hosts.append((_host(host), name, value))
        object.__setattr__(self, "per_host", tuple(hosts))
        if self.basic is not None:
            user, password = self.basic
            if not user or ":" in user or _BAD_VALUE.search(user + password):
                raise ConfigError("--user takes USER:PASSWORD (a user name without ':')")
        if self.bearer is not None and (not self.bearer or _BAD_VALUE.search(self.bearer)):
            raise ConfigError("--bearer takes a token without spaces or control characters")
        if self.basic is not None and self.bearer is not None:
            raise ConfigError("give --user or --bearer, not both (each is an Authorization)")
        if self.withheld and self.given:
            raise ConfigError("withheld headers are only those of a stored job")

    @classmethod
    def parse(
        cls,
        *,
        headers: Iterable[str] = (),
        headers_for: Iterable[tuple[str, str]] = (),
        user: str | None = None,
        bearer: str | None = None,
    ) -> ExtraHeaders:
        """From the command line's spelling: ``'Name: value'``, ``(HOST, 'Name: value')``,
        ``USER:PASSWORD``, ``TOKEN``."""
        basic = None
        if user is not None:
            name, colon, password = user.partition(":")
            if not colon:
                raise ConfigError("--user takes USER:PASSWORD")
            basic = (name, password)
        return cls(
            every_host=tuple(parse_header(text) for text in headers),
            per_host=tuple((host, *parse_header(text)) for host, text in headers_for),
            basic=basic,
            bearer=bearer.strip() if bearer is not None else None,
        )

    @classmethod
    def from_summary(cls, summary: Sequence[str] | None) -> ExtraHeaders:
        """What a stored job's record says it sends (values withheld)."""
        return cls(withheld=tuple(sorted(summary or ())))

    @property
    def given(self) -> bool:
        """Anything to send."""
        return bool(self.every_host or self.per_host or self.basic or self.bearer)

    @property
    def missing(self) -> bool:
        """A stored job's headers whose values must be given again before it runs."""
        return bool(self.withheld)

    def summary(self) -> tuple[str, ...]:
        """What a job stores of these: names and hosts, sorted, never a value."""
        if self.withheld:
            return self.withheld
        items = {f"-H {name.lower()}" for name, _ in self.every_host}
        items |= {f"--header-for {host} {name.lower()}" for host, name, _ in self.per_host}
        if self.basic is not None:
            items.add("--user")
        if self.bearer is not None:
            items.add("--bearer")
        return tuple(sorted(items))

    def with_values_of(self, given: ExtraHeaders) -> ExtraHeaders:
        """These (a stored job's) with the values ``given`` again; a ``ConfigError`` names
        what is missing or different."""
        if given.summary() != self.summary():
            raise ConfigError(
                "the job sends headers whose values are not stored; give them again "
                f"({'; '.join(self.summary()) or 'none'}), got "
                f"({'; '.join(given.summary()) or 'none'})"
            )
        return given

    def for_host(self, host: str, *, credentials: bool) -> tuple[Header, ...]:
        """The headers to add to a request to ``host``; ``credentials``: whether it is a
        credential host (see the module docstring)."""
        added: list[Header] = []
        for name, value in self.every_host:
            if credentials or name.lower() not in CREDENTIAL_HEADERS:
                added.append((name, value))
        if credentials:
            if self.basic is not None:
                token = base64.b64encode(":".join(self.basic).encode()).decode("ascii")
                added.append(("Authorization", f"Basic {token}"))
            elif self.bearer is not None:
                added.append(("Authorization", f"Bearer {self.bearer}"))
        specific = [(name, value) for key, name, value in self.per_host if key == host]
        if specific:
            # --header-for wins over -H of the same name.
            names = {name.lower() for name, _ in specific}
            added = [h for h in added if h[0].lower() not in names] + specific
        return tuple(added)

    def before_fetch(
        self, credential_hosts: frozenset[str] | None
    ) -> Callable[[Request], Request] | None:
        """A runner's ``before_fetch`` adding these to each request (None: nothing to add).
        ``credential_hosts``: a crawl's seed hosts; None: every request's own host. A
        request's own headers (a JSON input line's) win over these."""
        if not self.given:
            return None
        cache: dict[tuple[str, bool], tuple[Header, ...]] = {}

        def before_fetch(request: Request) -> Request:
            host = request.host
            credentials = credential_hosts is None or host in credential_hosts
            extra = cache.get((host, credentials))
            if extra is None:
                if len(cache) > 4096:
                    cache.clear()
                extra = cache[(host, credentials)] = self.for_host(host, credentials=credentials)
            if not extra:
                return request
            own = {name.lower() for name, _ in request.headers}
            merged = tuple(h for h in extra if h[0].lower() not in own) + request.headers
            return replace(request, headers=merged)

        return before_fetch

    def __repr__(self) -> str:
        # A spec is printed in errors and logs: never its secrets.
        return f"ExtraHeaders({', '.join(self.summary()) or 'none'})"
