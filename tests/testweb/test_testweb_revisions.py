"""The /rev/ pages: validators, 304s, counts, and what each revision serves."""

from __future__ import annotations

from collections.abc import Mapping
from email.utils import parsedate_to_datetime

import aiohttp

from shoal.testweb import SiteSpec, TestWeb


async def _get(
    session: aiohttp.ClientSession, url: str, headers: dict[str, str] | None = None
) -> tuple[int, Mapping[str, str], bytes]:
    async with session.get(url, headers=headers) as response:
        return response.status, response.headers.copy(), await response.read()


async def test_validators_304s_and_counts(session: aiohttp.ClientSession) -> None:
    async with TestWeb(SiteSpec(hosts=2, pages=3)) as web:
        url = web.url(0, "/rev/2")
        status, headers, body = await _get(session, url)
        assert status == 200 and b"version 0" in body
        etag, modified = headers["ETag"], headers["Last-Modified"]
        assert etag == '"p2-v0"' and parsedate_to_datetime(modified).year >= 2023
        assert web.revisions() == (0, 0)

        for conditional in (
            {"If-None-Match": etag},
            {"If-None-Match": f'"other", W/{etag}'},
            {"If-None-Match": "*"},
            {"If-Modified-Since": modified},
        ):
            status, headers, body = await _get(session, url, conditional)
            assert (status, body, headers["ETag"]) == (304, b"", etag)
        assert web.revisions() == (4, 4)
        status, _, _ = await _get(session, url, {"If-None-Match": '"p2-v9"'})
        assert status == 200  # If-None-Match wins over If-Modified-Since, and differs
        status, _, _ = await _get(session, url, {"If-Modified-Since": "not a date"})
        assert status == 200
        assert web.revisions() == (6, 4)
        sent = [seen for seen in web.seen() if seen.path == "/rev/2"]
        assert sent[1].header("if-none-match") == etag

        web.set_revision(1)
        status, headers, _ = await _get(session, url, {"If-None-Match": etag})
        assert status == 200 and headers["ETag"] == '"p2-v1"'
        status, headers, _ = await _get(session, web.url(0, "/rev/1"), {"If-None-Match": '"p1-v0"'})
        assert status == 304  # odd pages never change
        web.reset_stats()
        assert web.revisions() == (0, 0)


async def test_what_each_revision_serves(session: aiohttp.ClientSession) -> None:
    async with TestWeb(SiteSpec(hosts=2, pages=3)) as web:
        status, _, index = await _get(session, web.url(0, "/rev/0"))
        assert status == 200 and b"/rev/5" in index and b"/rev/6" not in index
        assert (await _get(session, web.url(0, "/rev/5")))[0] == 200
        assert (await _get(session, web.url(0, "/rev/6")))[0] == 404
        web.set_revision(1)
        status, _, index = await _get(session, web.url(0, "/rev/0"))
        assert b'"/rev/6"' in index and web.url(1, "/rev/0").encode() in index
        assert (await _get(session, web.url(0, "/rev/5")))[0] == 410
        status, _, six = await _get(session, web.url(0, "/rev/6"))
        assert status == 200 and b"/rev/7" in six
        assert (await _get(session, web.url(0, "/rev/8")))[0] == 404
