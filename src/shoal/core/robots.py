"""robots.txt decisions for one host (RFC 9309), from one fetch outcome.

The engine fetches ``/robots.txt``, following up to five redirects, and hands
the final status and body to ``rules_from_response``. The ``RobotsRules`` it
returns answers ``allowed(url)``, ``crawl_delay()`` and ``sitemaps()``, and
says when it expires.

What a fetch outcome means (RFC 9309 §2.3.1):

==========================  ==============  =======================================
final outcome               ``source``      why
==========================  ==============  =======================================
2xx                         parsed          §2.3.1.1: follow the parseable rules
3xx (redirects not          allow_all       §2.3.1.2: more than five redirects MAY
followed to the end)                        be taken as "unavailable"
4xx, except 429             allow_all       §2.3.1.3: "unavailable", so the crawler
                                            MAY access any resource
429                         disallow_all    see below
5xx, no response            disallow_all    §2.3.1.4: "unreachable", so assume
                                            complete disallow
anything else (1xx, <100)   disallow_all    not a usable answer: as unreachable
==========================  ==============  =======================================

429 ("Too Many Requests") is in the 4xx range, but it asks the crawler to slow
down rather than saying there is no robots.txt; reading it as "crawl
everything" would answer a server's plea with more load. Like Google, shoal
treats it as unreachable. A ``disallow_all`` outcome expires after
``RobotsPolicy.unavailable_retry`` seconds so the engine asks again soon; the
others after ``RobotsPolicy.ttl`` (§2.4: at most 24 hours is the recommended
cache lifetime).

Parsing (§2.2). Lines end at CR, LF or CRLF; ``#`` starts a comment; a UTF-8
BOM is dropped; bytes past ``max_bytes`` are ignored, cut back to the last
line break so that no rule is half-read. A group is one or more
``User-agent`` lines followed by rules; only ``Allow`` and ``Disallow`` end the
run of user-agent lines, so other records (``Sitemap``, ``Crawl-delay``,
unknown ones) never split or end a group (§2.2.4). Rules before the first
user-agent line are ignored. A user-agent value is reduced to its product
token (its leading ``[A-Za-z_-]`` characters, so ``ExampleBot/1.0`` is
``examplebot``) and matched case-insensitively with ours; every group naming
us is merged into one; without one, the ``*`` groups are; without either,
nothing is disallowed (§2.2.1). Common misspellings (``useragent``,
``dissallow``, ``site-map``) and a missing colon (``Disallow /x``) are read as
Google reads them (§2.2.4 allows this). As in RFC 9309 and in Google's parser,
``User-agent: *`` / ``Crawl-delay: 5`` / ``User-agent: BadBot`` /
``Disallow: /`` is *one* group for both agents: only a rule ends the run.

Matching (§2.2.2, §2.2.3) is ``core.pathpatterns``: the longest matching
pattern wins, allow on ties, after both sides are normalised.
``/robots.txt`` is always allowed.

Why not protego's matcher: protego (the project's robots.txt dependency)
picks the group whose name is a *prefix* of ours (``User-agent: sho`` binds
``shoal``, even when a ``*`` group exists), lets any unknown line end a run of
user-agent lines, turns ``Allow: /x$`` into an extra prefix rule for the
literal ``/x$``, allows ``/`` whenever ``.../index.html`` is allowed, keeps a
UTF-8 BOM as part of the first line, and compares ``https://`` and
``https%3A%2F%2F`` as different. Each is a test in ``tests/core/test_robots.py``;
the rest of protego's behaviour is the oracle of a differential test there.

``Crawl-delay`` and ``Request-rate`` are not in RFC 9309. ``crawl_delay()``
reads them from our group, or from the ``*`` group when ours names neither
(the politer reading); ``Request-rate: n/m[smhd]`` becomes a delay of m/n
(its optional time-of-day window is ignored, so it applies all day); the
larger of the two wins, capped at ``RobotsPolicy.max_crawl_delay`` so that a
robots.txt cannot stall a crawl for days.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

from shoal.core.errors import ConfigError
from shoal.core.pathpatterns import Rule, compile_rule, normalize_path, path_and_query
from shoal.core.urls import canonicalize

__all__ = ["RobotsPolicy", "RobotsRules", "Source", "rules_from_response", "ua_token"]

Source = Literal["parsed", "allow_all", "disallow_all"]

KiB = 1024
_RFC_MIN_PARSE_LIMIT = 500 * KiB
_JSON_VERSION = 1

_PRODUCT_TOKEN = re.compile(r"[A-Za-z_-]+")
_LINE_BREAK = re.compile(r"\r\n|\r|\n")
_REQUEST_RATE = re.compile(r"\s*(\d{1,9})\s*/\s*(\d{1,9})\s*([smhd]?)(?:\s|$)", re.IGNORECASE)
_RATE_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}

_USER_AGENT, _ALLOW, _DISALLOW, _SITEMAP, _CRAWL_DELAY, _REQUEST_RATE_KEY = range(6)
_KEYS = {
    "user-agent": _USER_AGENT,
    "useragent": _USER_AGENT,
    "user agent": _USER_AGENT,
    "allow": _ALLOW,
    "disallow": _DISALLOW,
    "dissallow": _DISALLOW,
    "dissalow": _DISALLOW,
    "disalow": _DISALLOW,
    "diasllow": _DISALLOW,
    "disallaw": _DISALLOW,
    "sitemap": _SITEMAP,
    "site-map": _SITEMAP,
    "crawl-delay": _CRAWL_DELAY,
    "request-rate": _REQUEST_RATE_KEY,
}


def ua_token(user_agent: str) -> str:
    """The product token of a User-Agent string: ``"shoal/0.1 (+https://…)"`` → ``"shoal"``.

    It is the leading run of letters, ``_`` and ``-`` (RFC 9309 §2.2.1). A
    browser-like string (``"Mozilla/5.0 (compatible; shoal/0.1)"``) gives
    ``"Mozilla"``; set ``RobotsPolicy.user_agent_token`` yourself then.
    """
    match = _PRODUCT_TOKEN.match(user_agent.strip())
    if match is None:
        raise ConfigError(f"user agent {user_agent!r} does not start with a product token")
    return match.group()


@dataclass(frozen=True, kw_only=True, slots=True)
class RobotsPolicy:
    """How robots.txt files are read and how long their answers are kept.

    ``max_crawl_delay`` caps what a robots.txt may demand between requests
    (seconds); ``ttl`` is how long an answer is cached; ``unavailable_retry``
    is how soon an unreachable robots.txt (5xx, 429, no response) is asked
    for again, everything on the host being disallowed meanwhile.
    """

    user_agent_token: str
    max_bytes: int = 500 * KiB
    max_crawl_delay: float = 30.0
    ttl: float = 24 * 3600.0
    unavailable_retry: float = 30.0

    def __post_init__(self) -> None:
        if _PRODUCT_TOKEN.fullmatch(self.user_agent_token) is None:
            raise ConfigError(
                f"robots user-agent token must be letters, '_' and '-' only, "
                f"got {self.user_agent_token!r}"
            )
        if self.max_bytes < _RFC_MIN_PARSE_LIMIT:
            raise ConfigError(
                f"robots max_bytes must be at least {_RFC_MIN_PARSE_LIMIT} (RFC 9309 §2.5), "
                f"got {self.max_bytes!r}"
            )
        for name, value in (
            ("max_crawl_delay", self.max_crawl_delay),
            ("ttl", self.ttl),
            ("unavailable_retry", self.unavailable_retry),
        ):
            if not math.isfinite(value) or value < 0 or (value == 0 and name != "max_crawl_delay"):
                bound = "≥ 0" if name == "max_crawl_delay" else "> 0"
                raise ConfigError(f"robots {name} must be finite and {bound}, got {value!r}")


@dataclass(slots=True)
class _Group:
    agents: set[str] = field(default_factory=set)
    rules: list[tuple[bool, str]] = field(default_factory=list)
    crawl_delays: list[str] = field(default_factory=list)
    request_rates: list[str] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class _Parsed:
    rules: tuple[Rule, ...]  # longest first, allow before disallow on ties
    crawl_delay: float | None
    sitemaps: tuple[str, ...]
    # A plain rule (no "*", no "$") can only match as a prefix: when none of
    # them prefixes a URL, one startswith() call leaves just the other rules.
    plain_prefixes: tuple[str, ...] = ()
    special_rules: tuple[Rule, ...] = ()


@dataclass(frozen=True, slots=True)
class RobotsRules:
    """What one host's robots.txt allows us, until ``expires_at``.

    Build it with ``rules_from_response`` (or ``from_json``); the fields are
    the fetch outcome it was built from.
    """

    source: Source
    status: int | None
    fetched_at: float
    expires_at: float
    text: str | None = field(default=None, repr=False)
    """The robots.txt as parsed (decoded, capped), for a ``parsed`` source."""
    _parsed: _Parsed = field(default=_Parsed((), None, ()), repr=False, compare=False)

    def allowed(self, url: str) -> bool:
        """Whether we may fetch ``url`` (an absolute URL, or a path starting with ``/``)."""
        target = path_and_query(url)
        if target.partition("?")[0] == "/robots.txt":
            return True
        if self.source != "parsed":
            return self.source == "allow_all"
        parsed = self._parsed
        if not parsed.rules:
            return True
        key = normalize_path(target)
        rules = parsed.rules if key.startswith(parsed.plain_prefixes) else parsed.special_rules
        for rule in rules:
            if rule.matches(key):
                return rule.allow
        return True

    def crawl_delay(self) -> float | None:
        """Seconds to wait between requests that robots.txt asks for, or ``None``."""
        return self._parsed.crawl_delay

    def sitemaps(self) -> tuple[str, ...]:
        """The canonical, absolute http(s) URLs of the ``Sitemap:`` lines, in order."""
        return self._parsed.sitemaps

    def expired(self, now: float) -> bool:
        """Whether the answer is too old to use at time ``now``; fetch robots.txt again."""
        return now >= self.expires_at

    def to_json(self) -> dict[str, object]:
        """A JSON-able form for the store: the outcome itself, re-parsed by ``from_json``."""
        return {
            "v": _JSON_VERSION,
            "status": self.status,
            "fetched_at": self.fetched_at,
            "text": self.text,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, object], *, policy: RobotsPolicy) -> RobotsRules:
        """Rebuild the rules from ``to_json`` output, under the current ``policy``.

        Re-parsing under the caller's policy keeps a cached answer consistent
        with a changed user-agent token, cap or TTL. Raises ``ValueError`` when
        ``data`` is not something ``to_json`` wrote.
        """
        version = data.get("v")
        status = data.get("status")
        fetched_at = data.get("fetched_at")
        text = data.get("text")
        if (
            version != _JSON_VERSION
            or not (status is None or (isinstance(status, int) and not isinstance(status, bool)))
            or not isinstance(fetched_at, int | float)
            or isinstance(fetched_at, bool)
            or not (text is None or isinstance(text, str))
        ):
            raise ValueError(f"not a cached robots.txt answer (format version {_JSON_VERSION})")
        return _build(policy, status=status, text=text, fetched_at=float(fetched_at))


def rules_from_response(
    policy: RobotsPolicy, *, status: int | None, body: bytes | None, fetched_at: float
) -> RobotsRules:
    """Decide from the final outcome of fetching ``/robots.txt``.

    ``status`` is the final HTTP status after redirects, or ``None`` when no
    response arrived (DNS, connect, TLS, timeout); ``body`` is the response
    body, whole or cut at ``policy.max_bytes`` (a body that long loses its last,
    possibly partial, line); ``fetched_at`` is when, as Unix time.
    """
    text = _decode(body or b"", policy.max_bytes) if _source(status) == "parsed" else None
    return _build(policy, status=status, text=text, fetched_at=fetched_at)


def _source(status: int | None) -> Source:
    if status is None or status == 429:
        return "disallow_all"
    if 200 <= status < 300:
        return "parsed"
    if 300 <= status < 500:
        return "allow_all"
    return "disallow_all"


def _build(
    policy: RobotsPolicy, *, status: int | None, text: str | None, fetched_at: float
) -> RobotsRules:
    source = _source(status)
    if source == "disallow_all":
        return RobotsRules(source, status, fetched_at, fetched_at + policy.unavailable_retry)
    expires_at = fetched_at + policy.ttl
    if source == "allow_all":
        return RobotsRules(source, status, fetched_at, expires_at)
    text = text or ""
    return RobotsRules(source, status, fetched_at, expires_at, text, _parse(text, policy))


def _decode(body: bytes, max_bytes: int) -> str:
    if len(body) >= max_bytes:
        # Ignore the part past the cap from its last complete line on. A body of
        # exactly max_bytes may already have been cut by the fetcher: trim it too.
        capped = body[:max_bytes]
        cut = max(capped.rfind(b"\n"), capped.rfind(b"\r"))
        body = capped[: cut + 1]
    text = body.decode("utf-8", errors="replace")
    return text[1:] if text.startswith("\ufeff") else text


# --- parsing ---


def _parse(text: str, policy: RobotsPolicy) -> _Parsed:
    groups: list[_Group] = []
    sitemaps: list[str] = []
    group: _Group | None = None
    reading_agents = False  # whether a user-agent line now adds to ``group``
    for line in _LINE_BREAK.split(text):
        record = _record(line)
        if record is None:
            continue
        key, value = record
        if key == _USER_AGENT:
            if group is None or not reading_agents:
                group = _Group()
                groups.append(group)
                reading_agents = True
            agent = _agent_token(value)
            if agent is not None:
                group.agents.add(agent)
        elif key == _SITEMAP:
            if value:
                sitemaps.append(value)
        elif group is None:
            continue  # a rule before any user-agent line (§2.2.2: ignore it)
        elif key in (_ALLOW, _DISALLOW):
            reading_agents = False
            if value:  # "Disallow:" with no path disallows nothing
                group.rules.append((key == _ALLOW, value))
        elif key == _CRAWL_DELAY:
            group.crawl_delays.append(value)
        else:
            group.request_rates.append(value)

    token = policy.user_agent_token.lower()
    ours = [group for group in groups if token in group.agents]
    anyone = [group for group in groups if "*" in group.agents]
    chosen = ours or anyone
    rules = {compile_rule(allow, pattern) for group in chosen for allow, pattern in group.rules}
    delay = _delay(ours, policy)
    if delay is None:
        delay = _delay(anyone, policy)
    ordered = tuple(sorted(rules, key=lambda rule: (-rule.priority, not rule.allow)))
    return _Parsed(
        rules=ordered,
        crawl_delay=delay,
        sitemaps=_canonical_sitemaps(sitemaps),
        plain_prefixes=tuple(rule.parts[0] for rule in ordered if rule.plain),
        special_rules=tuple(rule for rule in ordered if not rule.plain),
    )


def _record(line: str) -> tuple[int, str] | None:
    """The (key, value) of a line, or ``None`` for blank, comment and unknown lines."""
    line = line.partition("#")[0].strip()
    if not line:
        return None
    name, colon, value = line.partition(":")
    if colon:
        key = _KEYS.get(name.strip().lower())
        if key is not None:
            return key, value.strip()
    words = line.split()  # "Disallow /path": whitespace for a missing colon, as Google reads it
    if len(words) == 2:
        key = _KEYS.get(words[0].lower())
        if key is not None:
            return key, words[1].strip()
    return None


def _agent_token(value: str) -> str | None:
    if value[:1] == "*" and value[1:2] in ("", " ", "\t"):
        return "*"
    match = _PRODUCT_TOKEN.match(value)
    return match.group().lower() if match is not None else None


def _delay(groups: list[_Group], policy: RobotsPolicy) -> float | None:
    delays = [
        delay
        for group in groups
        for delay in (
            *(_crawl_delay(value) for value in group.crawl_delays),
            *(_rate_delay(value) for value in group.request_rates),
        )
        if delay is not None
    ]
    return min(max(delays), policy.max_crawl_delay) if delays else None


def _crawl_delay(value: str) -> float | None:
    try:
        delay = float(value)
    except ValueError:
        return None
    return delay if math.isfinite(delay) and delay >= 0 else None


def _rate_delay(value: str) -> float | None:
    match = _REQUEST_RATE.match(value)
    if match is None or int(match.group(1)) == 0:
        return None
    seconds = int(match.group(2)) * _RATE_UNITS[match.group(3).lower()]
    return seconds / int(match.group(1))


def _canonical_sitemaps(values: list[str]) -> tuple[str, ...]:
    seen: dict[str, None] = {}
    for value in values:
        try:
            seen[canonicalize(value)] = None
        except ValueError:  # InputError: relative, not http(s), or not a URL at all
            continue
    return tuple(seen)
