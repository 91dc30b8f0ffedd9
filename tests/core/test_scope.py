"""Tests for shoal.core.scope: which discovered URLs a crawl follows."""

from __future__ import annotations

import copy
import dataclasses
import pickle

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shoal.core.errors import ConfigError
from shoal.core.scope import Scope, ScopeDecision
from shoal.core.urls import canonicalize

OUT = ScopeDecision.OUT_OF_SCOPE
EXCLUDED = ScopeDecision.EXCLUDED
TOO_DEEP = ScopeDecision.TOO_DEEP

HOST_SEEDS = ("https://www.example.org/start", "http://127.0.0.2:8080/", "http://[::1]/")
HOST = [
    ("https://www.example.org/", None),
    ("https://www.example.org/any/path?q=1", None),
    ("http://www.example.org/", None),  # scheme does not matter
    ("https://www.example.org:8443/", None),  # nor does the port
    ("http://127.0.0.2/", None),
    ("http://127.0.0.2:9090/x", None),
    ("http://[::1]:81/", None),
    ("https://example.org/", OUT),  # www. is not stripped
    ("https://a.www.example.org/", OUT),
    ("https://www.example.org.evil.net/", OUT),
    ("https://wwwexample.org/", OUT),
    ("http://127.0.0.3/", OUT),
    ("http://[::2]/", OUT),
    ("not a url", OUT),
    ("", OUT),
]


@pytest.mark.parametrize(("url", "expected"), HOST)
def test_host_mode(url: str, expected: ScopeDecision | None) -> None:
    assert Scope(mode="host", seeds=HOST_SEEDS).decide(url, 1) == expected


DOMAIN_SEEDS = ("https://www.example.org/", "https://shop.example.net/", "http://10.0.0.1/")
DOMAIN = [
    ("https://example.org/", None),
    ("https://www.example.org/", None),
    ("https://a.example.org/", None),
    ("https://a.b.example.org:8080/", None),
    ("http://www.www.example.org/", None),
    ("https://shop.example.net/", None),
    ("https://eu.shop.example.net/", None),
    ("https://example.net/", OUT),  # the seed was not www.: its site is shop.example.net
    ("https://other.example.net/", OUT),
    ("https://otherexample.org/", OUT),
    ("https://example.org.evil.net/", OUT),
    ("https://example.com/", OUT),
    ("http://10.0.0.1:81/", None),
    ("http://10.0.0.2/", OUT),
    ("http://1.10.0.0.1/", OUT),
]


@pytest.mark.parametrize(("url", "expected"), DOMAIN)
def test_domain_mode(url: str, expected: ScopeDecision | None) -> None:
    assert Scope(mode="domain", seeds=DOMAIN_SEEDS).decide(url, 1) == expected


@pytest.mark.parametrize(
    ("seed", "inside", "outside"),
    [
        ("https://www.com/", "https://www.com/", "https://example.com/"),  # nothing left but a TLD
        ("http://www/", "http://www/", "http://a.www.x/"),
        ("https://WWW.Example.ORG/", "https://deep.example.org/", "https://example.com/"),
    ],
)
def test_domain_site_edge_cases(seed: str, inside: str, outside: str) -> None:
    scope = Scope(mode="domain", seeds=(seed,))
    assert scope.decide(inside, 1) is None
    assert scope.decide(outside, 1) == OUT


PREFIX_SEEDS = (
    "https://h.example/docs/intro.html",
    "https://h.example/api/",
    "http://p.example:8080/a?x=/b/",
)
PREFIX = [
    ("https://h.example/docs/", None),
    ("https://h.example/docs/intro.html", None),
    ("https://h.example/docs/deep/er/page", None),
    ("https://h.example/docs/?q=1", None),
    ("https://h.example/api/v1", None),
    ("http://p.example:8080/b", None),
    ("http://p.example:8080/", None),
    ("https://h.example/docs", OUT),
    ("https://h.example/documents/", OUT),
    ("https://h.example/", OUT),
    ("http://h.example/docs/", OUT),  # the scheme is part of the prefix
    ("https://h.example:444/docs/", OUT),  # and so is the port
    ("http://p.example/b", OUT),
    ("https://other.example/docs/", OUT),
]


@pytest.mark.parametrize(("url", "expected"), PREFIX)
def test_prefix_mode(url: str, expected: ScopeDecision | None) -> None:
    assert Scope(mode="prefix", seeds=PREFIX_SEEDS).decide(url, 1) == expected


def test_any_mode_follows_everything() -> None:
    scope = Scope(mode="any", seeds=())
    assert scope.decide("https://anything.example/", 1) is None
    assert scope.decide("http://[::1]:1/", 99) is None


IDN = [
    ("host", "https://bücher.de/", "https://xn--bcher-kva.de/x", None),
    ("host", "https://BÜCHER.de/", "https://xn--bcher-kva.de/", None),
    ("host", "https://xn--bcher-kva.de/", "https://xn--bcher-kva.de/", None),
    ("host", "https://bücher.de/", "https://bucher.de/", OUT),
    ("domain", "https://www.bücher.de/", "https://shop.xn--bcher-kva.de/", None),
    ("prefix", "https://bücher.de/ä/", "https://xn--bcher-kva.de/%C3%A4/x", None),
]


@pytest.mark.parametrize(("mode", "seed", "url", "expected"), IDN)
def test_idn_hosts_are_compared_in_punycode(
    mode: str, seed: str, url: str, expected: ScopeDecision | None
) -> None:
    scope = Scope(mode=mode, seeds=(seed,))  # type: ignore[arg-type]
    assert scope.seeds == (canonicalize(seed),)
    assert scope.decide(url, 1) == expected


PATTERNS = [
    # include, exclude, url, expected
    ((), (), "https://h.example/a", None),
    ((r"/blog/",), (), "https://h.example/blog/post", None),
    ((r"/blog/",), (), "https://h.example/shop/item", EXCLUDED),
    ((r"/blog/", r"/news/"), (), "https://h.example/news/1", None),
    ((), (r"\.pdf$",), "https://h.example/file.pdf", EXCLUDED),
    ((), (r"\.pdf$",), "https://h.example/file.pdf?x", None),
    ((r"/blog/",), (r"/blog/drafts/",), "https://h.example/blog/drafts/1", EXCLUDED),
    ((r"/blog/",), (r"/blog/drafts/",), "https://h.example/blog/final/1", None),
    ((r"(?i)/BLOG/",), (), "https://h.example/blog/", None),
    ((r"^https://h\.example/a",), (), "https://h.example/a/b", None),
    ((r"^https://h\.example/a",), (), "https://h.example/b/a", EXCLUDED),
    ((), (r"[?&]sessionid=",), "https://h.example/?a=1&sessionid=2", EXCLUDED),
]


@pytest.mark.parametrize(("include", "exclude", "url", "expected"), PATTERNS)
def test_include_and_exclude(
    include: tuple[str, ...], exclude: tuple[str, ...], url: str, expected: ScopeDecision | None
) -> None:
    scope = Scope(mode="host", seeds=("https://h.example/",), include=include, exclude=exclude)
    assert scope.decide(url, 1) == expected


def test_mode_is_checked_before_patterns() -> None:
    scope = Scope(mode="host", seeds=("https://h.example/",), include=("/x",), max_depth=0)
    assert scope.decide("https://other.example/", 5) == OUT
    assert scope.decide("https://h.example/", 5) == EXCLUDED
    assert scope.decide("https://h.example/x", 5) == TOO_DEEP


DEPTHS = [(None, 0, None), (None, 10**6, None), (0, 1, TOO_DEEP), (2, 2, None), (2, 3, TOO_DEEP)]


@pytest.mark.parametrize(("max_depth", "depth", "expected"), DEPTHS)
def test_depth(max_depth: int | None, depth: int, expected: ScopeDecision | None) -> None:
    scope = Scope(mode="any", seeds=(), max_depth=max_depth)
    assert scope.decide("https://h.example/x", depth) == expected


def test_seeds_are_in_scope_at_depth_zero_whatever_the_patterns() -> None:
    seed = "https://h.example/start.pdf"
    scope = Scope(
        mode="prefix", seeds=(seed,), include=("never",), exclude=(r"\.pdf",), max_depth=0
    )
    assert scope.decide(seed, 0) is None
    assert scope.decide(seed, 1) == EXCLUDED
    assert scope.decide("https://h.example/other.html", 0) == EXCLUDED


def test_seeds_are_canonicalized() -> None:
    scope = Scope(mode="host", seeds=["HTTPS://H.example:443/a/../b#x"])  # type: ignore[arg-type]
    assert scope.seeds == ("https://h.example/b",)
    assert scope.decide("https://h.example/b", 0) is None


INVALID = [
    ({"mode": "site", "seeds": ("https://h/",)}, "scope mode"),
    ({"mode": "host", "seeds": ()}, "at least one seed"),
    ({"mode": "host", "seeds": "https://h/"}, "not one string"),
    ({"mode": "host", "seeds": ("ftp://h/",)}, "invalid scope seed 'ftp://h/'"),
    ({"mode": "host", "seeds": (42,)}, "URL string"),
    (
        {"mode": "any", "seeds": (), "include": ("(unclosed",)},
        "invalid include pattern '(unclosed'",
    ),
    ({"mode": "any", "seeds": (), "exclude": ("a", "*bad")}, "invalid exclude pattern '*bad'"),
    ({"mode": "any", "seeds": (), "include": (b"bytes",)}, "must be a string"),
    ({"mode": "any", "seeds": (), "max_depth": -1}, "max_depth"),
    ({"mode": "any", "seeds": (), "max_depth": 1.5}, "max_depth"),
]


@pytest.mark.parametrize(("kwargs", "message"), INVALID)
def test_invalid_configuration(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace("*", r"\*")):
        Scope(**kwargs)  # type: ignore[arg-type]


def test_scope_is_a_frozen_value() -> None:
    scope = Scope(mode="host", seeds=("https://h.example/",), include=("a",))
    assert scope == Scope(mode="host", seeds=("https://h.example/",), include=("a",))
    with pytest.raises(dataclasses.FrozenInstanceError):
        scope.mode = "any"  # type: ignore[misc]
    assert "_in_mode" not in repr(scope)


def test_scope_pickles_and_copies() -> None:
    scope = Scope(mode="domain", seeds=("https://www.h.example/",), exclude=("/x",), max_depth=2)
    for clone in (pickle.loads(pickle.dumps(scope)), copy.deepcopy(scope)):
        assert clone == scope
        assert clone.decide("https://a.h.example/", 1) is None
        assert clone.decide("https://a.h.example/x", 1) == EXCLUDED
    deeper = dataclasses.replace(scope, max_depth=5)
    assert deeper.decide("https://h.example/", 5) is None


def test_decisions_are_stable_strings() -> None:
    assert [decision.value for decision in ScopeDecision] == [
        "out_of_scope",
        "excluded",
        "too_deep",
    ]
    assert ScopeDecision.TOO_DEEP == "too_deep"


@given(
    st.sampled_from(["host", "domain", "prefix"]),
    st.sampled_from(
        ["https://www.example.org/docs/a.html", "http://10.1.2.3:8080/x/", "https://bücher.de/"]
    ),
    st.text(alphabet="abc/.?=&%", max_size=20),
)
def test_seed_children_are_in_scope(mode: str, seed: str, tail: str) -> None:
    """Every mode admits what lies under a seed's directory, on the seed's host."""
    scope = Scope(mode=mode, seeds=(seed,))  # type: ignore[arg-type]
    directory = scope.seeds[0].rpartition("/")[0] + "/"
    url = canonicalize(directory + tail.lstrip("/."))
    if url.startswith(directory):
        assert scope.decide(url, 1) is None


def test_a_seeds_redirect_to_another_host_joins_the_scope() -> None:
    seeds = tuple(f"https://h{n}.example/" for n in range(1000))
    scope = Scope(mode="host", seeds=seeds)
    assert scope.decide("https://www.h3.example/x", 1) == ScopeDecision.OUT_OF_SCOPE
    assert scope.adopt("https://h3.example/", "https://www.h3.example/")
    assert scope.decide("https://www.h3.example/x", 1) is None
    # Same host: nothing to adopt; a URL that is not a seed adopts nothing.
    assert not scope.adopt("https://h4.example/", "https://h4.example/home")
    assert not scope.adopt("https://elsewhere.example/", "https://other.example/")
    assert scope.decide("https://other.example/", 1) == ScopeDecision.OUT_OF_SCOPE
    assert scope.seeds == seeds  # adopting does not rebuild the seed list
    assert scope.adopted == (("https://h3.example/", "https://www.h3.example/"),)
    again = pickle.loads(pickle.dumps(scope))
    assert again.decide("https://www.h3.example/x", 1) is None


def test_a_prefix_seeds_redirect_replaces_its_directory() -> None:
    scope = Scope(mode="prefix", seeds=("https://h.example/library",))
    assert scope.decide("https://h.example/other/", 1) is None  # "/" before the redirect
    assert scope.adopt("https://h.example/library", "https://h.example/library/")
    assert scope.decide("https://h.example/library/a", 1) is None
    assert scope.decide("https://h.example/other/", 1) == ScopeDecision.OUT_OF_SCOPE
    # A redirect within the same directory changes nothing.
    assert not scope.adopt("https://h.example/library/", "https://h.example/library/index")
