"""JobCookies: the jar's limits and its request/response hooks, without a network."""

from __future__ import annotations

from shoal.core.model import FetchResult, Request
from shoal.engine.fetch.cookies import JobCookies


def response(url: str, *cookies: str) -> FetchResult:
    return FetchResult(
        request_id=1, url=url, status=200, headers=tuple(("Set-Cookie", c) for c in cookies)
    )


def test_cookies_go_back_to_their_host_only_and_own_headers_win() -> None:
    jar = JobCookies()
    jar.take_from(response("http://a.example/login", "s=1; Path=/", "t=2; Path=/x"))
    sent = jar.add_to(Request(id=1, url="http://a.example/x/y", host="a.example")).headers
    assert sent == (("Cookie", "t=2; s=1"),)
    assert jar.add_to(Request(id=2, url="http://b.example/", host="b.example")).headers == ()
    own = Request(id=3, url="http://a.example/", host="a.example", headers=(("cookie", "m=1"),))
    assert jar.add_to(own) is own


def test_limits_per_host_and_per_cookie() -> None:
    jar = JobCookies(max_per_host=5, max_bytes=100)
    jar.take_from(response("http://a.example/", *(f"c{n}=v" for n in range(8))))
    jar.take_from(response("http://b.example/", "big=" + "x" * 200, "small=1"))
    assert len(jar) == 6 and jar.dropped == 4
    assert jar.add_to(Request(id=1, url="http://b.example/", host="b.example")).headers == (
        ("Cookie", "small=1"),
    )


def test_the_jar_round_trips_through_the_store_text_and_loaded_cookies_win() -> None:
    jar = JobCookies()
    jar.take_from(response("http://a.example/", "s=old; Path=/", "t=1; Path=/; Max-Age=3600"))
    text = jar.dumps()
    again = JobCookies()
    again.take_from(response("http://a.example/", "s=new; Path=/"))
    assert again.restore(text) == 1  # t; s is held already (from --cookies, say)
    sent = dict(
        part.split("=")
        for part in again.add_to(Request(id=1, url="http://a.example/", host="a.example"))
        .headers[0][1]
        .split("; ")
    )
    assert sent == {"s": "new", "t": "1"}
    assert JobCookies().restore("not json") == 0
