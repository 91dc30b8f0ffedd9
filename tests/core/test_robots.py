"""Tests for shoal.core.robots: fetch outcomes, RFC 9309 grouping and matching, caching."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from hypothesis import example, given
from hypothesis import strategies as st
from protego import Protego

from shoal.core.errors import ConfigError
from shoal.core.robots import RobotsPolicy, RobotsRules, rules_from_response, ua_token

DATA = Path(__file__).parent / "data" / "robots"
NOW = 1_700_000_000.0
POLICY = RobotsPolicy(user_agent_token="shoal")


def parsed(text: str | bytes, token: str = "shoal") -> RobotsRules:
    body = text.encode() if isinstance(text, str) else text
    policy = RobotsPolicy(user_agent_token=token)
    return rules_from_response(policy, status=200, body=body, fetched_at=NOW)


def allows(text: str, url: str, token: str = "shoal") -> bool:
    return parsed(text, token).allowed(url)


# --- fetch outcomes (RFC 9309 §2.3.1) ---

OUTCOMES = [
    # status, source, allowed("/page"), expires after
    (200, "parsed", False, 86400.0),
    (203, "parsed", False, 86400.0),
    (301, "allow_all", True, 86400.0),  # redirects not followed to the end: unavailable
    (399, "allow_all", True, 86400.0),
    (400, "allow_all", True, 86400.0),
    (401, "allow_all", True, 86400.0),  # RFC 9309 §2.3.1.3: 401 and 403 too
    (403, "allow_all", True, 86400.0),
    (404, "allow_all", True, 86400.0),
    (410, "allow_all", True, 86400.0),
    (429, "disallow_all", False, 30.0),  # a plea to slow down, not "no robots.txt"
    (499, "allow_all", True, 86400.0),
    (500, "disallow_all", False, 30.0),
    (503, "disallow_all", False, 30.0),
    (599, "disallow_all", False, 30.0),
    (None, "disallow_all", False, 30.0),  # no response: DNS, connect, TLS, timeout
    (100, "disallow_all", False, 30.0),
    (0, "disallow_all", False, 30.0),
    (600, "disallow_all", False, 30.0),
]


@pytest.mark.parametrize(("status", "source", "allowed", "lifetime"), OUTCOMES)
def test_fetch_outcome(status: int | None, source: str, allowed: bool, lifetime: float) -> None:
    body = b"User-agent: *\nDisallow: /page\n"
    rules = rules_from_response(POLICY, status=status, body=body, fetched_at=NOW)
    assert rules.source == source
    assert rules.status == status
    assert rules.allowed("https://example.com/page") is allowed
    assert rules.allowed("https://example.com/robots.txt")
    assert rules.fetched_at == NOW
    assert rules.expires_at == NOW + lifetime
    assert not rules.expired(NOW + lifetime - 0.001)
    assert rules.expired(NOW + lifetime)
    if source != "parsed":
        assert rules.crawl_delay() is None
        assert rules.sitemaps() == ()
        assert rules.text is None


def test_policy_lifetimes_are_used() -> None:
    policy = RobotsPolicy(user_agent_token="shoal", ttl=60.0, unavailable_retry=5.0)
    ok = rules_from_response(policy, status=200, body=b"", fetched_at=10.0)
    down = rules_from_response(policy, status=502, body=b"", fetched_at=10.0)
    assert (ok.expires_at, down.expires_at) == (70.0, 15.0)


def test_success_without_body_allows_everything() -> None:
    rules = rules_from_response(POLICY, status=200, body=None, fetched_at=NOW)
    assert rules.source == "parsed"
    assert rules.allowed("https://example.com/anything")


# --- policy and product token ---


@pytest.mark.parametrize(
    ("user_agent", "token"),
    [
        ("shoal/0.1 (+https://github.com/shoal-crawler/shoal)", "shoal"),
        ("shoal", "shoal"),
        ("  My_Crawler-X/2.0", "My_Crawler-X"),
        ("Mozilla/5.0 (compatible; shoal/0.1)", "Mozilla"),
    ],
)
def test_ua_token(user_agent: str, token: str) -> None:
    assert ua_token(user_agent) == token


@pytest.mark.parametrize("user_agent", ["", "   ", "/0.1", "123bot", "ßbot"])
def test_ua_token_needs_a_product_token(user_agent: str) -> None:
    with pytest.raises(ConfigError, match="product token"):
        ua_token(user_agent)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"user_agent_token": "shoal/0.1"}, "letters"),
        ({"user_agent_token": ""}, "letters"),
        ({"user_agent_token": "bot2"}, "letters"),
        ({"max_bytes": 500 * 1024 - 1}, "RFC 9309"),
        ({"max_crawl_delay": -1.0}, "max_crawl_delay"),
        ({"max_crawl_delay": float("inf")}, "max_crawl_delay"),
        ({"ttl": 0.0}, "ttl"),
        ({"ttl": float("nan")}, "ttl"),
        ({"unavailable_retry": 0.0}, "unavailable_retry"),
    ],
)
def test_policy_validation(changes: dict[str, object], message: str) -> None:
    arguments: dict[str, object] = {"user_agent_token": "shoal", **changes}
    with pytest.raises(ConfigError, match=message):
        RobotsPolicy(**arguments)  # type: ignore[arg-type]


def test_policy_defaults() -> None:
    assert POLICY == RobotsPolicy(
        user_agent_token="shoal",
        max_bytes=512_000,
        max_crawl_delay=30.0,
        ttl=86400.0,
        unavailable_retry=30.0,
    )
    assert RobotsPolicy(user_agent_token="shoal", max_crawl_delay=0.0).max_crawl_delay == 0.0


# --- RFC 9309 §5: the RFC's own examples ---

RFC_5_1 = (DATA / "rfc9309_5_1.txt").read_text()

# The RFC's notes on the example: foobot is disallowed everywhere except the two
# allowed files; barbot and bazbot share one group; quxbot has an empty group,
# which allows everything; anyone else follows the "*" group.
RFC_5_1_CASES = [
    ("foobot", "/example/page.html", True),
    ("foobot", "/example/allowed.gif", True),
    ("foobot", "/example/disallowed.gif", False),
    ("foobot", "/publications/", False),
    ("foobot", "/", False),
    ("FooBot", "/example/page.html", True),
    ("barbot", "/example/page.html", False),
    ("barbot", "/example/page.htm", True),
    ("barbot", "/example/other.gif", True),  # its group, not "*", applies
    ("bazbot", "/example/page.html", False),
    ("bazbot", "/publications/", True),
    ("quxbot", "/example/page.html", True),
    ("quxbot", "/image.gif", True),
    ("shoal", "/image.gif", False),
    ("shoal", "/a/b/image.gif", False),
    ("shoal", "/image.gif?size=2", True),  # "$": the URL must end there
    ("shoal", "/image.gifs", True),
    ("shoal", "/example/", False),
    ("shoal", "/example/page.html", False),
    ("shoal", "/example", True),
    ("shoal", "/publications/", True),
    ("shoal", "/publications/x.gif", True),  # "/publications/" is longer than "*.gif$"
    ("shoal", "/", True),
]


@pytest.mark.parametrize(("token", "path", "allowed"), RFC_5_1_CASES)
def test_rfc9309_5_1_simple_example(token: str, path: str, allowed: bool) -> None:
    assert allows(RFC_5_1, f"https://example.com{path}", token) is allowed


def test_rfc9309_5_2_longest_match() -> None:
    text = (DATA / "rfc9309_5_2.txt").read_text()
    assert not allows(text, "https://example.com/example/page/disallowed.gif", "foobot")
    assert allows(text, "https://example.com/example/page/allowed.gif", "foobot")
    assert allows(text, "https://example.com/example/page/", "foobot")


# --- RFC 9309 §2.2.2 Figure 4 and §2.2.3 Figures 5 and 6 ---

# (pattern in robots.txt, path of the URL, whether the pattern matches)
RFC_FIGURES = [
    # Figure 4: percent-encoding
    ("/foo/bar?baz=quz", "/foo/bar?baz=quz", True),
    ("/foo/bar?baz=https://foo.bar", "/foo/bar?baz=https%3A%2F%2Ffoo.bar", True),
    ("/foo/bar/\u30c4", "/foo/bar/%E3%83%84", True),
    ("/foo/bar/%E3%83%84", "/foo/bar/%E3%83%84", True),
    ("/foo/bar/%62%61%7A", "/foo/bar/baz", True),
    # ... and the same equivalences the other way round
    ("/foo/bar?baz=https%3A%2F%2Ffoo.bar", "/foo/bar?baz=https://foo.bar", True),
    ("/foo/bar/%E3%83%84", "/foo/bar/\u30c4", True),
    ("/foo/bar/%e3%83%84", "/foo/bar/%E3%83%84", True),
    ("/foo/bar/baz", "/foo/bar/%62%61%7a", True),
    # Figure 5: special characters
    ("/this/path/exactly$", "/this/path/exactly", True),
    ("/this/path/exactly$", "/this/path/exactly/", False),
    ("/this/path/exactly$", "/this/path/exactly?q", False),
    ("/this/*/exactly", "/this/a/b/exactly", True),
    ("/this/*/exactly", "/this//exactly", True),
    ("/this/*/exactly", "/this/exactly", False),
    ("/ # comment in line", "/anything", True),
    # Figure 6: "%2A" and "%24" are a literal "*" and "$"
    ("/path/file-with-a-%2A.html", "/path/file-with-a-*.html", True),
    ("/path/file-with-a-%2A.html", "/path/file-with-a-%2A.html", True),
    ("/path/file-with-a-%2A.html", "/path/file-with-a-x.html", False),
    ("/path/foo-%24", "/path/foo-$", True),
    ("/path/foo-%24", "/path/foo-%24", True),
    ("/path/foo-%24", "/path/foo-", False),
]


@pytest.mark.parametrize(("pattern", "path", "matches"), RFC_FIGURES)
def test_rfc9309_figures(pattern: str, path: str, matches: bool) -> None:
    text = f"User-agent: *\nDisallow: {pattern}\n"
    assert allows(text, f"https://www.example.com{path}") is not matches


# --- matching ---

MATCHING = [
    # longest match wins, whatever the order
    ("Allow: /a/b\nDisallow: /a", "/a/b/c", True),
    ("Disallow: /a\nAllow: /a/b", "/a/b/c", True),
    ("Allow: /a\nDisallow: /a/b", "/a/b/c", False),
    ("Disallow: /a/b\nAllow: /a", "/a/bc", False),
    # ties: allow wins (§2.2.2)
    ("Disallow: /a\nAllow: /a", "/a", True),
    ("Allow: /a\nDisallow: /a", "/a", True),
    ("Disallow: /a*\nAllow: /a$", "/a", True),
    # wildcards and anchors count in the length, as Google counts them
    ("Disallow: /*\nAllow: /", "/x", False),
    ("Disallow: /a\nAllow: /*a", "/a", True),
    ("Disallow: /a/*/c\nAllow: /a/b/c", "/a/b/c", True),
    ("Disallow: /a/*/c\nAllow: /a/b", "/a/b/c", False),
    # "*"
    ("Disallow: *", "/", False),
    ("Disallow: /*", "/", False),
    ("Disallow: /**a", "/xa", False),
    ("Disallow: /a*", "/a", False),
    ("Disallow: /*sessionid=", "/p?sessionid=1", False),
    ("Disallow: /*?", "/p?", False),
    ("Disallow: /*?", "/p", True),
    ("Disallow: /*.php*?", "/a.php/x?y", False),
    ("Disallow: /a*b*c", "/acb", True),
    ("Disallow: /a*b*c", "/abbbc", False),
    # "$"
    ("Disallow: /$", "/", False),
    ("Disallow: /$", "/a", True),
    ("Disallow: /*.pdf$", "/x.pdf", False),
    ("Disallow: /*.pdf$", "/x.pdf?download", True),
    ("Disallow: /*.pdf$", "/x.pdf.html", True),
    ("Disallow: /a*a$", "/a", True),  # the two "a"s cannot overlap
    ("Disallow: /a*a$", "/aa", False),
    ("Disallow: /a$b", "/a$b/c", False),  # "$" not at the end is a literal
    ("Disallow: /a$b", "/a%24b/c", False),
    ("Disallow: /a$b", "/ab", True),
    ("Disallow: /a$$", "/a$", False),
    ("Disallow: /a$$", "/a", True),
    ("Disallow: /\nAllow: /page$", "/page$x", False),  # protego: allowed
    ("Disallow: $", "/", True),
    # an allowed index.html does not allow its directory (protego: it does)
    ("Disallow: /\nAllow: /index.html", "/", False),
    ("Disallow: /\nAllow: /d/index.html", "/d/", False),
    ("Disallow: /\nAllow: /d/index.html", "/d/index.html", True),
    # case-sensitive paths (§2.2.2 SHOULD)
    ("Disallow: /Private", "/private", True),
    ("Disallow: /Private", "/Private/x", False),
    # the query is part of what is matched; the fragment is not
    ("Disallow: /a?b", "/a?b=1", False),
    ("Disallow: /a?b", "/a", True),
    ("Disallow: /a#frag", "/a", False),  # "#" starts a comment: the rule is "/a"
    # reserved characters equal their escapes; "/" too (§2.2.2, literally)
    ("Disallow: /a/b", "/a%2Fb", False),
    ("Disallow: /a%2fb", "/a/b", False),
    ("Disallow: /a:b@c", "/a%3Ab%40c", False),
    ("Disallow: /a=b&c", "/a%3Db%26c", False),
    # unreserved escapes decoded, others kept
    ("Disallow: /%7Euser", "/~user/x", False),
    ("Disallow: /a%20b", "/a b", False),
    ("Disallow: /a b", "/a%20b", False),
    ("Disallow: /100%", "/100%25", False),
    ("Disallow: /100%25", "/100%", False),
    ("Disallow: /%zz", "/%zz", False),
    ("Disallow: /%41", "/A", False),
    ("Disallow: /%41", "/a", True),
    # a rule must start matching at the first octet of the path
    ("Disallow: a", "/a", True),
    ("Disallow: http://example.com/a", "/a", True),
    # empty Disallow, empty Allow
    ("Disallow:", "/a", True),
    ("Disallow:\nDisallow: /b", "/b", False),
    ("Allow:\nDisallow: /", "/a", False),
    # /robots.txt itself is always allowed
    ("Disallow: /", "/robots.txt", True),
    ("Disallow: /robots.txt", "/robots.txt?x=1", True),
    ("Disallow: /", "/robots.txt/x", False),
    ("Disallow: /", "/ROBOTS.TXT", False),
]


@pytest.mark.parametrize(("rules", "path", "allowed"), MATCHING)
def test_matching(rules: str, path: str, allowed: bool) -> None:
    assert allows(f"User-agent: *\n{rules}\n", f"https://example.com{path}") is allowed


@pytest.mark.parametrize(
    ("url", "allowed"),
    [
        ("https://example.com/private", False),
        ("https://example.com/private#x", False),
        ("https://user:pw@example.com:8443/private?q", False),
        ("https://example.com?private", True),  # the path is "/"
        ("https://example.com", True),
        ("/private/x", False),  # a bare path works too
        ("private", False),
        ("", True),
    ],
)
def test_url_forms(url: str, allowed: bool) -> None:
    assert allows("User-agent: *\nDisallow: /private\n", url) is allowed


# --- groups (RFC 9309 §2.2.1) ---

_OURS = "User-agent: shoal\n"
GROUPS = [
    # case-insensitive product-token match
    ("User-agent: SHOAL\nDisallow: /", False),
    ("User-agent: Shoal\nDisallow: /", False),
    # a user-agent value is reduced to its product token
    ("User-agent: shoal/1.0\nDisallow: /", False),
    ("User-agent: shoal crawler\nDisallow: /", False),
    ("User-agent: shoalbot\nDisallow: /", True),
    ("User-agent: sho\nDisallow: /", True),  # protego: the prefix binds "shoal"
    ("User-agent: sho\nDisallow: /\n\nUser-agent: *\nAllow: /", True),
    ("User-agent: *shoal\nDisallow: /", True),
    ("User-agent: * \nDisallow: /", False),
    ("User-agent: *\tcomment\nDisallow: /", False),
    # our group, else "*", else nothing
    ("User-agent: *\nDisallow: /\n\nUser-agent: shoal\nAllow: /", True),
    ("User-agent: shoal\nAllow: /\n\nUser-agent: *\nDisallow: /", True),
    ("User-agent: *\nDisallow: /\n\nUser-agent: shoal\nDisallow: /other", True),
    ("User-agent: other\nDisallow: /\n\nUser-agent: *\nDisallow: /page", False),
    ("User-agent: other\nDisallow: /", True),
    ("", True),
    ("# nothing but a comment", True),
    # several user-agent lines, one group
    ("User-agent: a\nUser-agent: shoal\nUser-agent: b\nDisallow: /", False),
    ("User-agent: a\n\nUser-agent: shoal\n\nDisallow: /", False),  # blank lines do not end it
    # groups for the same agent are merged (longest match across them)
    (
        "User-agent: shoal\nDisallow: /pa\nUser-agent: x\nDisallow: /\n" + _OURS + "Allow: /pag",
        True,
    ),
    ("User-agent: shoal\nAllow: /pa\nUser-agent: x\nAllow: /\n" + _OURS + "Disallow: /pag", False),
    ("User-agent: *\nAllow: /\n\nUser-agent: *\nDisallow: /page", False),
    # only Allow and Disallow end a run of user-agent lines (§2.2.4)
    ("User-agent: shoal\nFoo: bar\nUser-agent: other\nDisallow: /", False),  # protego: allowed
    ("User-agent: shoal\nSitemap: https://example.com/s.xml\nUser-agent: x\nDisallow: /", False),
    ("User-agent: shoal\nCrawl-delay: 1\nUser-agent: x\nDisallow: /", False),
    # ... which can surprise: this file meant to shut out BadBot only (Google reads it so too)
    ("User-agent: *\nCrawl-delay: 5\n\nUser-agent: BadBot\nDisallow: /", False),
    ("User-agent: shoal\nDisallow:\nUser-agent: other\nDisallow: /", True),  # an empty rule does
    ("User-agent: shoal\nDisallow: /x\nUser-agent: other\nDisallow: /", True),
    # rules before any user-agent line are ignored (§2.2.2)
    ("Disallow: /\nUser-agent: shoal\nDisallow: /x", True),
    ("Disallow: /", True),
    # a user-agent line with no value opens a group that matches nobody
    ("User-agent:\nDisallow: /\n\nUser-agent: *\nAllow: /", True),
]


@pytest.mark.parametrize(("text", "allowed"), GROUPS)
def test_groups(text: str, allowed: bool) -> None:
    assert allows(text, "https://example.com/page") is allowed


def test_token_of_one_character_is_not_confused_with_star() -> None:
    text = "User-agent: *\nDisallow: /\n\nUser-agent: s\nAllow: /\n"
    assert allows(text, "https://example.com/page", token="s")  # protego: disallowed


# --- lines ---

LINES = [
    ("user-agent: *\ndisallow: /page", False),
    ("USER-AGENT: *\nDISALLOW: /page", False),
    ("User-agent:*\nDisallow:/page", False),
    ("  User-agent  :  *  \n\tDisallow\t:\t/page\t", False),
    ("User-agent: * # everyone\nDisallow: /page # the page", False),
    ("User-agent: *\nDisallow: /page#fragment-looking", False),
    ("User-agent: *\n# Disallow: /page", True),
    ("User-agent: *\nNoindex: /page", True),  # unknown records are ignored
    ("User-agent: *\nDisallow /page", False),  # a missing colon, as Google reads it
    ("User-agent: *\nDisallow /page more", True),  # ... when the line has exactly two words
    ("User agent: *\nDisallow: /page", False),
    ("Useragent: *\nDissallow: /page", False),
    ("User-agent: *\nDisalow: /page", False),
    ("User-agent: *\nDisallow: /page extra words", True),  # the space is part of the pattern
    ("User-agent: *\nDisallow: /pa ge", True),
]


@pytest.mark.parametrize(("text", "allowed"), LINES)
def test_lines(text: str, allowed: bool) -> None:
    assert allows(text, "https://example.com/page") is allowed


@pytest.mark.parametrize("newline", ["\n", "\r\n", "\r"])
def test_line_endings(newline: str) -> None:
    text = newline.join(["User-agent: *", "Disallow: /a", "Allow: /a/b", "", "Disallow: /c"])
    rules = parsed(text)
    assert not rules.allowed("/a")
    assert rules.allowed("/a/b")
    assert not rules.allowed("/c")
    assert rules.allowed("/b")


def test_byte_order_mark_is_dropped() -> None:
    rules = parsed(b"\xef\xbb\xbfUser-agent: *\nDisallow: /a\n")
    assert not rules.allowed("/a")
    assert rules.text == "User-agent: *\nDisallow: /a\n"


def test_invalid_utf8_does_not_hide_the_other_lines() -> None:
    rules = parsed(b"User-agent: *\nDisallow: /\xff\xfe\nDisallow: /b\n")
    assert not rules.allowed("/b")
    assert not rules.allowed("/%EF%BF%BD%EF%BF%BD")  # each bad byte becomes U+FFFD
    assert rules.allowed("/c")


def test_size_cap_ignores_the_rest_from_the_last_complete_line() -> None:
    cap = 500 * 1024
    head = b"User-agent: *\nDisallow: /early\n"
    filler = b"# " + b"x" * 97 + b"\n"
    body = head + filler * ((cap - len(head)) // len(filler))
    room = cap - len(body)
    assert 0 < room < len(filler)
    # "Disallow: /abcdef" straddles the cap: only "Disallow: /a" would fit in it.
    tail = b"Disallow: /abcdef\nDisallow: /late\n"
    body += b"#" * (room - len(b"Disallow: /a") - 1) + b"\n" + tail
    rules = rules_from_response(POLICY, status=200, body=body, fetched_at=NOW)
    assert not rules.allowed("/early")
    assert rules.allowed("/abc"), "a rule cut in half at the cap is not read"
    assert rules.allowed("/late")
    assert rules.text is not None and len(rules.text.encode()) <= cap
    # The fetcher may have cut the body at the cap already: the same answer.
    again = rules_from_response(POLICY, status=200, body=body[:cap], fetched_at=NOW)
    assert again.text == rules.text
    bigger = RobotsPolicy(user_agent_token="shoal", max_bytes=2 * cap)
    rules = rules_from_response(bigger, status=200, body=body, fetched_at=NOW)
    assert not rules.allowed("/abcdef")
    assert not rules.allowed("/late")


def test_realistic_file() -> None:
    rules = parsed((DATA / "realistic.txt").read_bytes())
    assert not rules.allowed("https://www.example.com/private/x")
    assert rules.allowed("https://www.example.com/private/press/release")
    assert not rules.allowed("https://www.example.com/cgi-bin/x")
    assert rules.allowed("https://www.example.com/search")  # our group does not say so
    assert rules.allowed("https://www.example.com/doc.pdf")
    assert rules.crawl_delay() == 5.0
    assert rules.sitemaps() == (
        "https://www.example.com/sitemap_index.xml",
        "https://www.example.com/news-sitemap.xml.gz",
    )
    anyone = parsed((DATA / "realistic.txt").read_bytes(), token="somebot")
    assert not anyone.allowed("https://www.example.com/search?q=1")
    assert anyone.allowed("https://www.example.com/search/about")
    assert not anyone.allowed("https://www.example.com/tmp/x")
    assert not anyone.allowed("https://www.example.com/a?sessionid=1")
    assert not anyone.allowed("https://www.example.com/doc.pdf")
    assert anyone.allowed("https://www.example.com/doc.pdf?page=2")
    assert anyone.allowed("https://www.example.com/ignored/")
    assert anyone.crawl_delay() == 2.0
    assert not parsed((DATA / "realistic.txt").read_bytes(), token="BadBot").allowed("/x")


# --- crawl delay ---

DELAYS = [
    ("User-agent: *\nCrawl-delay: 2.5", 2.5),
    ("User-agent: *\nCrawl-delay: 0", 0.0),
    ("User-agent: *\nCrawl-delay: 1e9", 30.0),  # capped
    ("User-agent: *\nCrawl-delay: 3600", 30.0),
    ("User-agent: *\nCrawl-delay: -1", None),
    ("User-agent: *\nCrawl-delay: soon", None),
    ("User-agent: *\nCrawl-delay: nan", None),
    ("User-agent: *\nCrawl-delay: inf", None),
    ("User-agent: *\nCrawl-delay:", None),
    ("User-agent: *\nDisallow: /", None),
    ("", None),
    # ours, falling back to "*" when ours names none
    ("User-agent: *\nCrawl-delay: 7\nDisallow:\n\nUser-agent: shoal\nCrawl-delay: 3", 3.0),
    # no rule between them: one group for "*" and us (§2.2.4), so both values
    ("User-agent: *\nCrawl-delay: 7\n\nUser-agent: shoal\nCrawl-delay: 3", 7.0),
    ("User-agent: *\nCrawl-delay: 7\n\nUser-agent: shoal\nDisallow: /x", 7.0),
    ("User-agent: other\nCrawl-delay: 7", None),
    ("Crawl-delay: 7\nUser-agent: *\nDisallow: /x", None),  # outside any group
    # several values: the largest
    ("User-agent: shoal\nCrawl-delay: 1\nCrawl-delay: 4\nCrawl-delay: 2", 4.0),
    ("User-agent: shoal\nCrawl-delay: 1\n\nUser-agent: shoal\nCrawl-delay: 6", 6.0),
    # Request-rate: requests / period
    ("User-agent: *\nRequest-rate: 1/5", 5.0),
    ("User-agent: *\nRequest-rate: 1/5s", 5.0),
    ("User-agent: *\nRequest-rate: 2/1m", 30.0),
    ("User-agent: *\nRequest-rate: 10/1M", 6.0),
    ("User-agent: *\nRequest-rate: 100/1h", 30.0),
    ("User-agent: *\nRequest-rate: 3/1s 0600-0845", 1 / 3),
    ("User-agent: *\nRequest-rate: 0/5s", None),
    ("User-agent: *\nRequest-rate: 1/5x", None),
    ("User-agent: *\nRequest-rate: fast", None),
    ("User-agent: *\nRequest-rate: 1/10s\nCrawl-delay: 2", 10.0),
    ("User-agent: *\nRequest-rate: 1/1s\nCrawl-delay: 2", 2.0),
]


@pytest.mark.parametrize(("text", "delay"), DELAYS)
def test_crawl_delay(text: str, delay: float | None) -> None:
    assert parsed(text).crawl_delay() == delay


def test_crawl_delay_cap_is_configurable() -> None:
    policy = RobotsPolicy(user_agent_token="shoal", max_crawl_delay=1.0)
    rules = rules_from_response(
        policy, status=200, body=b"User-agent: *\nCrawl-delay: 9", fetched_at=NOW
    )
    assert rules.crawl_delay() == 1.0


# --- sitemaps ---


def test_sitemaps_are_canonical_absolute_and_listed_once() -> None:
    text = "\n".join(
        [
            "Sitemap: https://Example.COM:443/a.xml",
            "User-agent: *",
            "Sitemap: http://example.com/b.xml#frag",  # inside a group: still site-wide
            "Disallow: /",
            "sitemap:https://example.com/a.xml",
            "Site-map: https://example.com/c.xml",
            "Sitemap: /relative.xml",
            "Sitemap: ftp://example.com/d.xml",
            "Sitemap: ",
            "Sitemap: https://exa mple.com/e.xml",
            "Sitemap https://example.com/f.xml",
        ]
    )
    assert parsed(text).sitemaps() == (
        "https://example.com/a.xml",
        "http://example.com/b.xml",
        "https://example.com/c.xml",
        "https://example.com/f.xml",
    )


# --- caching ---


@pytest.mark.parametrize("status", [200, 404, 503, None])
def test_json_round_trip(status: int | None) -> None:
    body = b"\xef\xbb\xbfUser-agent: *\nDisallow: /a\xff\nCrawl-delay: 4\nSitemap: http://e.com/s"
    rules = rules_from_response(POLICY, status=status, body=body, fetched_at=NOW)
    data = rules.to_json()
    assert set(data) == {"v", "status", "fetched_at", "text"}
    again = RobotsRules.from_json(data, policy=POLICY)
    assert again == rules
    for path in ("/a", "/a\ufffd", "/b", "/robots.txt"):
        assert again.allowed(path) == rules.allowed(path)
    assert again.crawl_delay() == rules.crawl_delay()
    assert again.sitemaps() == rules.sitemaps()


def test_json_is_reparsed_under_the_current_policy() -> None:
    body = b"User-agent: shoal\nDisallow: /\n\nUser-agent: *\nCrawl-delay: 60"
    data = rules_from_response(POLICY, status=200, body=body, fetched_at=NOW).to_json()
    other = RobotsPolicy(user_agent_token="otherbot", max_crawl_delay=10.0, ttl=60.0)
    rules = RobotsRules.from_json(data, policy=other)
    assert rules.allowed("/page")
    assert rules.crawl_delay() == 10.0
    assert rules.expires_at == NOW + 60.0


@pytest.mark.parametrize(
    "data",
    [
        {},
        {"v": 2, "status": 200, "fetched_at": NOW, "text": ""},
        {"v": 1, "status": "200", "fetched_at": NOW, "text": ""},
        {"v": 1, "status": True, "fetched_at": NOW, "text": ""},
        {"v": 1, "status": 200, "fetched_at": "now", "text": ""},
        {"v": 1, "status": 200, "fetched_at": NOW, "text": b""},
    ],
)
def test_json_rejects_what_to_json_did_not_write(data: dict[str, object]) -> None:
    with pytest.raises(ValueError, match="not a cached robots.txt answer"):
        RobotsRules.from_json(data, policy=POLICY)


# --- properties ---


@given(body=st.binary(max_size=2000), status=st.none() | st.integers(-1, 700))
@example(body=b"User-agent: *\nDisallow: /*\xff*$\r\nAllow: %\n", status=200)
def test_any_body_is_read_without_error(body: bytes, status: int | None) -> None:
    rules = rules_from_response(POLICY, status=status, body=body, fetched_at=NOW)
    rules.allowed("https://example.com/")
    rules.crawl_delay()
    rules.sitemaps()
    assert RobotsRules.from_json(rules.to_json(), policy=POLICY) == rules


_ROBOTS_LINE = st.sampled_from(
    ["User-agent: *", "User-agent: shoal", "User-agent: x", "Allow: ", "Disallow: ", ""]
).flatmap(
    lambda key: st.text(alphabet="/ab*$?%2F=#\u30c4", max_size=8).map(lambda tail: key + tail)
)


@given(
    lines=st.lists(_ROBOTS_LINE, max_size=12),
    url=st.text(max_size=40),
)
@example(lines=["User-agent: *", "Disallow: /*a*a*a*a*a$"], url="/" + "a" * 30 + "b")
def test_any_url_is_decided_without_error(lines: list[str], url: str) -> None:
    rules = parsed("\n".join(lines))
    assert rules.allowed(url) in (True, False)
    assert rules.allowed("https://example.com/" + url) in (True, False)


# Differential test: where protego follows RFC 9309 (no "$", no "index.html",
# characters that need no escaping), it must agree with us.
_PATTERN = st.text(alphabet="/ab*", min_size=1, max_size=6)
_RULE = st.tuples(st.sampled_from(["Allow", "Disallow"]), _PATTERN)


@given(
    rules=st.lists(_RULE, max_size=8),
    path=st.text(alphabet="/ab", max_size=10).map(lambda path: "/" + path),
)
def test_agrees_with_protego_where_protego_follows_the_rfc(
    rules: list[tuple[str, str]], path: str
) -> None:
    text = "User-agent: *\n" + "".join(f"{field}: {pattern}\n" for field, pattern in rules)
    url = "https://example.com" + path
    assert allows(text, url) == Protego.parse(text).can_fetch(url, "shoal")


def _reference_allowed(rules: list[tuple[str, str]], path: str) -> bool:
    """RFC 9309 matching written the slow, obvious way: a regular expression per rule."""
    best: tuple[int, bool] | None = None
    for field, pattern in rules:
        anchored = pattern.endswith("$")
        body = pattern[:-1] if anchored else pattern
        regex = ".*".join(re.escape(part) for part in body.split("*")) + ("\\Z" if anchored else "")
        if re.match(regex, path, re.DOTALL):
            candidate = (len(pattern), field == "Allow")
            best = candidate if best is None else max(best, candidate)
    return True if best is None else best[1]


@given(
    rules=st.lists(st.tuples(st.sampled_from(["Allow", "Disallow"]), st.text("/ab*$", max_size=6))),
    path=st.text(alphabet="/ab$", max_size=10).map(lambda path: "/" + path),
)
@example(rules=[("Disallow", "/a*a$")], path="/a")  # the two "a"s must not overlap
@example(rules=[("Disallow", "/a*"), ("Allow", "/a$")], path="/a")
def test_agrees_with_a_reference_matcher(rules: list[tuple[str, str]], path: str) -> None:
    text = "User-agent: *\n" + "".join(f"{field}: {pattern}\n" for field, pattern in rules)
    kept = [(field, pattern) for field, pattern in rules if pattern]  # "Disallow:" is no rule
    expected = True if path == "/robots.txt" else _reference_allowed(kept, path)
    assert allows(text, "https://example.com" + path) == expected


def test_many_wildcards_stay_fast() -> None:
    rules = parsed("User-agent: *\nDisallow: /" + "*a" * 200 + "$\n")
    assert rules.allowed("/" + "a" * 199 + "b" * 10_000)
