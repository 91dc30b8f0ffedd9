"""The ``JobSpec``: one frozen, validated description of a job, whatever built it.

Flags and TOML (the CLI), keyword arguments (the Python API) and a stored
record (a worker joining, a rerun) all end as a ``JobSpec``; the engine's one
runner takes nothing else. A job stores its spec, and every rerun compares
the new spec with the stored one (``compare``):

* the same: resume;
* a change that can safely apply to the job as it stands (a higher
  ``max_pages`` or ``depth``, more concurrency, other timeouts, saving bodies
  from now on): apply it and say so;
* anything else (other seeds, input, scope, rules...): refuse, naming the
  settings that differ.

Settings fall in three groups for that comparison:

``IDENTITY``
    What decides which URLs belong to the job and what is recorded of them.
    Any difference is a conflict.
``LIMITS``
    Bounds on the job's size. Raising (or removing) one applies; lowering one
    is a conflict, since what was admitted stays.
everything else
    How the work is done (concurrency, politeness, timeouts, retries, byte cap,
    bodies). A difference applies from now on.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal, TypeAlias, get_args

from shoal.core.config import CrawlConfig
from shoal.core.errors import ConfigError, InputError
from shoal.core.model import job_name
from shoal.core.revisit import DEFAULT_KEEP_HISTORY, MAX_KEEP_HISTORY
from shoal.core.scope import ScopeMode
from shoal.core.sendheaders import ExtraHeaders
from shoal.core.urls import canonical_host, canonicalize, split_userinfo

__all__ = [
    "MAX_COUNT",
    "MAX_DEPTH",
    "JobKind",
    "JobSpec",
    "SpecComparison",
    "check_count",
]

JobKind: TypeAlias = Literal["fetch", "crawl"]
_KINDS: tuple[str, ...] = get_args(JobKind)
_SCOPES: tuple[str, ...] = get_args(ScopeMode)

MAX_COUNT = 2**62
"""The largest page count a limit may be: the stores keep counts in 64-bit integers."""
MAX_DEPTH = 10_000
"""The largest ``depth`` a crawl may be given; ``None`` is no limit."""

IDENTITY = (
    "kind",
    "seeds",
    "input_digest",
    "scope",
    "include",
    "exclude",
    "strip_query_params",
    "sort_query",
    "robots",
    "sitemaps",
    "extract",
    "user_agent",
    "extra_headers",
)
"""Settings a rerun may not change (see the module docstring). ``extra_headers`` is
compared by names and hosts only: values are never stored, and a rerun gives them again
(a rotated token is the same job)."""

LIMITS = ("depth", "max_pages", "max_pages_per_host")
"""Settings a rerun may raise but not lower."""


def check_count(name: str, value: object, *, low: int = 1, high: int = MAX_COUNT) -> None:
    """A count given as a setting: None, or a whole number in ``[low, high]`` (bool is not
    one)."""
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ConfigError(f"{name} must be a whole number from {low} to {high}, got {value!r}")


def _strings(name: str, values: object) -> tuple[str, ...]:
    if isinstance(values, str) or not isinstance(values, Sequence):
        raise ConfigError(f"{name} must be a list of strings, got {values!r}")
    for value in values:
        if not isinstance(value, str):
            raise ConfigError(f"{name} must be a list of strings, got {value!r}")
    return tuple(values)


@dataclass(frozen=True, kw_only=True, slots=True)
class JobSpec:
    """A job: what to fetch, how far to go, and how to fetch it.

    ``kind`` is ``fetch`` (a list of requests: ``input`` names where it came from,
    ``input_digest`` identifies its content when known) or ``crawl`` (``seeds``,
    canonical URLs, followed within ``scope``). ``config`` holds the request
    settings (limits, timeouts, politeness, retries, user agent, bodies, rules).
    ``extra_headers``: headers and credentials added to what is sent (stored by name only,
    see ``shoal.core.sendheaders``). ``cookies``: keep the cookies sites set and send them
    back, like a browser session (a change applies from now on). ``keep_history``: how many
    earlier results a recrawl keeps per URL when a page changes (``shoal.core.revisit``).
    """

    kind: JobKind
    config: CrawlConfig = field(default_factory=CrawlConfig)
    seeds: tuple[str, ...] = ()
    input: str | None = None
    input_digest: str | None = None
    scope: ScopeMode = "host"
    include: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    strip_query_params: tuple[str, ...] = ()
    sort_query: bool = False
    depth: int | None = None
    max_pages: int | None = None
    max_pages_per_host: int | None = None
    robots: bool = True
    sitemaps: bool = False
    autothrottle: bool = False
    strict: bool = False
    seed_credentials: tuple[tuple[str, str], ...] = field(default=(), compare=False, repr=False)
    """``(seed, "user:pass")`` for seeds given with credentials: sent as the seed request's
    Basic auth, never part of the seed URL, the job's record or a comparison."""
    extra_headers: ExtraHeaders = field(default_factory=ExtraHeaders)
    cookies: bool = True
    keep_history: int = DEFAULT_KEEP_HISTORY
    public_only: bool = False
    """Connect only to public unicast addresses (what ``shoal serve`` asks of its jobs
    unless it allows private ones): kept with the job, so that a worker joining it keeps
    to it too."""

    def __post_init__(self) -> None:
        if self.kind not in _KINDS:
            raise ConfigError(f"kind must be one of {', '.join(_KINDS)}, got {self.kind!r}")
        if not isinstance(self.config, CrawlConfig):
            raise ConfigError(f"config must be a CrawlConfig, got {type(self.config).__name__}")
        if self.config.follow_links != (self.kind == "crawl"):
            raise ConfigError("config.follow_links must be True for a crawl, False for a fetch")
        if self.scope not in _SCOPES:
            raise ConfigError(f"scope must be one of {', '.join(_SCOPES)}, got {self.scope!r}")
        for name in ("seeds", "include", "exclude", "strip_query_params"):
            object.__setattr__(self, name, _strings(name, getattr(self, name)))
        flags = ("sort_query", "robots", "sitemaps", "autothrottle", "strict", "cookies")
        for name in (*flags, "public_only"):
            if not isinstance(getattr(self, name), bool):
                raise ConfigError(f"{name} must be true or false, got {getattr(self, name)!r}")
        if not isinstance(self.extra_headers, ExtraHeaders):
            raise ConfigError(
                f"extra_headers must be ExtraHeaders, got {type(self.extra_headers).__name__}"
            )
        check_count("depth", self.depth, low=0, high=MAX_DEPTH)
        check_count("max_pages", self.max_pages)
        check_count("max_pages_per_host", self.max_pages_per_host)
        check_count("keep_history", self.keep_history, low=0, high=MAX_KEEP_HISTORY)
        if self.kind == "crawl":
            if not self.seeds:
                raise ConfigError("a crawl needs at least one seed URL")
            for seed in self.seeds:
                if canonicalize(seed) != seed:
                    raise ConfigError(f"seed {seed!r} is not canonical (use JobSpec.crawl)")
        elif self.seeds:
            raise ConfigError("a fetch job takes its URLs from its input, not seeds")
        for kind, patterns in (("include", self.include), ("exclude", self.exclude)):
            for pattern in patterns:
                _check_pattern(kind, pattern)

    # -- building -----------------------------------------------------------

    @classmethod
    def crawl(
        cls,
        seeds: Sequence[str],
        *,
        config: CrawlConfig | None = None,
        **settings: Any,
    ) -> JobSpec:
        """A crawl from ``seeds`` as a user gives them: each is canonicalized (with the
        spec's ``strip_query_params`` and ``sort_query``). A bad seed raises ``InputError``
        with its 1-based position."""
        if isinstance(seeds, str):
            seeds = [seeds]
        strip = _strings("strip_query_params", settings.get("strip_query_params", ()))
        sort_query = bool(settings.get("sort_query", False))
        canonical: list[str] = []
        credentials: list[tuple[str, str]] = []
        for position, seed in enumerate(seeds, start=1):
            if not isinstance(seed, str):
                raise InputError(f"a seed must be a str, got {seed!r}", line_no=position)
            try:
                url = canonicalize(seed, strip_params=strip, sort_query=sort_query)
            except InputError as exc:
                raise InputError(f"{seed!r}: {exc.reason}", line_no=position) from None
            url, userinfo = split_userinfo(url)
            canonical.append(url)
            if userinfo is not None:
                credentials.append((url, userinfo))
        if not canonical:
            raise InputError("no seeds given")
        base = config or CrawlConfig(follow_links=True)
        return cls(
            kind="crawl",
            config=replace(base, follow_links=True),
            seeds=tuple(dict.fromkeys(canonical)),
            seed_credentials=tuple(credentials),
            **settings,
        )

    @classmethod
    def fetch(
        cls,
        *,
        input: str | None = None,
        input_digest: str | None = None,
        config: CrawlConfig | None = None,
        strict: bool = False,
        extra_headers: ExtraHeaders | None = None,
        cookies: bool = True,
        keep_history: int = DEFAULT_KEEP_HISTORY,
    ) -> JobSpec:
        base = config or CrawlConfig()
        return cls(
            kind="fetch",
            config=replace(base, follow_links=False),
            input=input,
            input_digest=input_digest,
            strict=strict,
            extra_headers=extra_headers or ExtraHeaders(),
            cookies=cookies,
            keep_history=keep_history,
        )

    # -- records --------------------------------------------------------------

    def as_record(self) -> dict[str, Any]:
        """A JSON-able dict of the whole spec, as the job stores it: the config's settings
        at the top level beside the job's own (the layout workers read)."""
        record = self.config.as_record()
        record.update(
            {
                "kind": self.kind,
                "seeds": list(self.seeds),
                "input": self.input,
                "input_digest": self.input_digest,
                "scope": self.scope,
                "include": list(self.include),
                "exclude": list(self.exclude),
                "strip_query_params": list(self.strip_query_params),
                "sort_query": self.sort_query,
                "depth": self.depth,
                "max_pages": self.max_pages,
                "max_pages_per_host": self.max_pages_per_host,
                "robots": self.robots,
                "sitemaps": self.sitemaps,
                "autothrottle": self.autothrottle,
                "strict": self.strict,
                "extra_headers": list(self.extra_headers.summary()) or None,
                "cookies": self.cookies,
                "keep_history": self.keep_history,
            }
        )
        if self.public_only:  # only when set: a job stored before it existed compares equal
            record["public_only"] = True
        return record

    @classmethod
    def from_record(cls, kind: str, record: Mapping[str, Any]) -> JobSpec:
        """The spec a job stored (``as_record``), for a worker joining it or a rerun
        comparing with it. Keys this version does not know are ignored; missing ones take
        their defaults. Raises ``ConfigError`` for a record this version cannot use."""
        try:
            config = CrawlConfig.from_record(record)
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"stored settings cannot be used: {exc}") from None
        config = replace(config, follow_links=kind == "crawl")
        return cls(
            kind=kind,  # type: ignore[arg-type]  # checked in __post_init__
            config=config,
            seeds=tuple(record.get("seeds") or ()),
            input=record.get("input"),
            input_digest=record.get("input_digest"),
            scope=record.get("scope") or "host",
            include=tuple(record.get("include") or ()),
            exclude=tuple(record.get("exclude") or ()),
            strip_query_params=tuple(record.get("strip_query_params") or ()),
            sort_query=bool(record.get("sort_query", False)),
            depth=record.get("depth"),
            max_pages=record.get("max_pages"),
            max_pages_per_host=record.get("max_pages_per_host"),
            robots=bool(record.get("robots", True)),
            sitemaps=bool(record.get("sitemaps", False)),
            autothrottle=bool(record.get("autothrottle", False)),
            strict=bool(record.get("strict", False)),
            extra_headers=ExtraHeaders.from_summary(record.get("extra_headers")),
            cookies=bool(record.get("cookies", True)),
            keep_history=record.get("keep_history", DEFAULT_KEEP_HISTORY),
            public_only=bool(record.get("public_only") or False),
        )

    # -- names and comparison ----------------------------------------------------

    def default_name(self) -> str:
        """The job name when none is given: the first seed's host (crawl) or the input's
        file name without its extensions (fetch), as ``job_name`` spells it."""
        if self.kind == "crawl":
            return job_name(canonical_host(self.seeds[0]), default="crawl")
        if self.input in (None, "-"):
            return "stdin" if self.input == "-" else "fetch"
        base = self.input.replace("\\", "/").rsplit("/", 1)[-1]
        return job_name(base.split(".")[0] or base, default="fetch")

    def credential_hosts(self) -> frozenset[str] | None:
        """Where ``--user``/``--bearer`` go: a crawl's seed hosts; None for a fetch (each
        input URL's own host)."""
        if self.kind == "crawl":
            return frozenset(canonical_host(seed) for seed in self.seeds)
        return None

    def identity(self) -> dict[str, Any]:
        """The settings a rerun may not change, as recorded."""
        record = self.as_record()
        return {name: record.get(name) for name in IDENTITY}

    def fingerprint(self) -> str:
        """A short hash of ``identity``: equal for specs a rerun could resume."""
        text = json.dumps(self.identity(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()[:8]

    def compare(self, stored: JobSpec) -> SpecComparison:
        """How this spec (a rerun's) stands to the ``stored`` one of the same job."""
        new, old = _flat(self.as_record()), _flat(stored.as_record())
        conflicts: list[str] = []
        changes: list[str] = []
        raised: list[str] = []
        for name in IDENTITY:
            if name == "input_digest" and (new.get(name) is None or old.get(name) is None):
                continue  # standard input: its content cannot be known before it is read
            if new.get(name) != old.get(name):
                conflicts.append("input" if name == "input_digest" else name)
        for name in LIMITS:
            before, after = old.get(name), new.get(name)
            if before == after:
                continue
            if after is None or (before is not None and after > before):
                raised.append(name)
                changes.append(f"{name} {_shown(before)} → {_shown(after)}")
            else:
                conflicts.append(f"{name} (lowered from {_shown(before)} to {_shown(after)})")
        skip = {*IDENTITY, *LIMITS, "input", "strict", "follow_links"}
        for name in sorted(set(new) | set(old)):
            if name in skip or name.split(".")[0] in skip:
                continue
            if new.get(name) != old.get(name):
                changes.append(f"{name} {_shown(old.get(name))} → {_shown(new.get(name))}")
        return SpecComparison(
            conflicts=tuple(conflicts), changes=tuple(changes), raised=tuple(raised)
        )


@dataclass(frozen=True, slots=True)
class SpecComparison:
    """What differs between a rerun's spec and the stored one.

    ``conflicts`` name settings that cannot change for an existing job; ``changes``
    describe the ones that apply (``"depth 1 → 2"``); ``raised`` names the limits raised.
    """

    conflicts: tuple[str, ...] = ()
    changes: tuple[str, ...] = ()
    raised: tuple[str, ...] = ()

    @property
    def same(self) -> bool:
        return not self.conflicts and not self.changes


def _flat(record: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"limits": {"concurrency": 8}}`` as ``{"limits.concurrency": 8}``; a nested
    setting is compared (and named) on its own."""
    flat: dict[str, Any] = {}
    for key, value in record.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            flat.update(_flat(value, f"{name}."))
        else:
            flat[name] = value
    return flat


def _shown(value: object) -> str:
    if value is None:
        return "none"
    if isinstance(value, float) and math.isfinite(value) and value.is_integer():
        return str(int(value))
    if isinstance(value, list):
        return ",".join(str(v) for v in value) or "[]"
    return str(value)


def _check_pattern(kind: str, pattern: str) -> None:
    try:
        re.compile(pattern)
    except re.error as exc:
        raise ConfigError(f"invalid {kind} pattern {pattern!r}: {exc}") from None
