"""A small shop served beside testweb's pages, for extraction tests: HTML in several
encodings, a JSON API, and a page of bytes that are no text at all.

``TestWeb(spec, extra_routes=shop.routes)``; every page is reachable from ``/shop/``.
"""

from __future__ import annotations

import json

from aiohttp import web

ITEMS = 4
RULES = {
    "title": "css:title::text",
    "price": "css:.price::text",
    "links": "css:a::attr(href)[]",
    "sku": r"re:SKU-(\d+)",
    "ids": "json:data.items[].id",
}
# Paths (under /shop/) and what the rules find there.
PAGES = ["", *(f"item/{n}" for n in range(ITEMS)), "latin1", "cyrillic", "garbage", "api/items"]

routes = web.RouteTableDef()


def item_title(n: int) -> str:
    return f"Café {n}"


def item_price(n: int) -> str:
    return f"€ {n}.99"


def _html(body: bytes, content_type: str = "text/html; charset=utf-8") -> web.Response:
    return web.Response(body=body, headers={"Content-Type": content_type})


@routes.get("/shop/")
async def index(_request: web.Request) -> web.Response:
    links = "".join(f'<a href="/shop/item/{n}">item {n}</a>\n' for n in range(ITEMS))
    links += '<a href="/shop/latin1">crème</a> <a href="/shop/cyrillic">ru</a>\n'
    links += '<a href="/shop/garbage">?</a> <a href="/shop/api/items">api</a>\n'
    page = f"<!doctype html><html><head><title>Shop</title></head><body>{links}</body></html>"
    return _html(page.encode())


@routes.get(r"/shop/item/{n:\d+}")
async def item(request: web.Request) -> web.Response:
    n = int(request.match_info["n"])
    nxt = f'<a href="/shop/item/{n + 1}">next</a>' if n + 1 < ITEMS else ""
    page = (
        f"<!doctype html><html><head><title>{item_title(n)}</title></head><body>"
        f'<h1>{item_title(n)}</h1><p class="price">  {item_price(n)} </p>'
        f'<p>SKU-{1000 + n}</p><a href="/shop/">home</a>{nxt}</body></html>'
    )
    return _html(page.encode())


@routes.get("/shop/latin1")
async def latin1(_request: web.Request) -> web.Response:
    # The header says ISO-8859-1 (read as windows-1252, as browsers do: hence the €).
    page = (
        '<html><head><meta charset="utf-8"><title>Crème brûlée</title></head>'
        '<body><p class="price">€ 4,50</p><a href="/shop/">home</a></body></html>'
    )
    return _html(page.encode("cp1252"), "text/html; charset=iso-8859-1")


@routes.get("/shop/cyrillic")
async def cyrillic(_request: web.Request) -> web.Response:
    page = (
        '<html><head><meta http-equiv="Content-Type" content="text/html; charset=windows-1251">'
        "<title>Привет</title></head><body><p class=price>100 ₽?</p></body></html>"
    )
    return _html(page.encode("cp1251", "replace"), "text/html")


GARBAGE = b"<html><head><title>ok \xff\xfe\xc3\x28</title></head><body>\x00\x81\x8d</body></html>"


@routes.get("/shop/garbage")
async def garbage(_request: web.Request) -> web.Response:
    return _html(GARBAGE, "text/html")


@routes.get("/shop/api/items")
async def api_items(_request: web.Request) -> web.Response:
    document = {"data": {"items": [{"id": 7, "name": "a"}, {"id": 8}, {"name": "no id"}]}}
    return web.Response(body=json.dumps(document).encode(), content_type="application/json")


class _StartsWith(str):
    def __eq__(self, other: object) -> bool:
        return isinstance(other, str) and other.startswith(str(self))

    __hash__ = str.__hash__


def expected(path: str) -> dict[str, object]:
    """The fields ``RULES`` give for ``/shop/PATH``."""
    empty: dict[str, object] = dict.fromkeys(RULES)
    if path == "":
        links = [f"/shop/item/{n}" for n in range(ITEMS)]
        links += ["/shop/latin1", "/shop/cyrillic", "/shop/garbage", "/shop/api/items"]
        return {**empty, "title": "Shop", "links": links}
    if path.startswith("item/"):
        n = int(path.split("/")[1])
        links = ["/shop/"] + ([f"/shop/item/{n + 1}"] if n + 1 < ITEMS else [])
        return {
            **empty,
            "title": item_title(n),
            "price": item_price(n),
            "links": links,
            "sku": str(1000 + n),
        }
    if path == "latin1":
        return {**empty, "title": "Crème brûlée", "price": "€ 4,50", "links": ["/shop/"]}
    if path == "cyrillic":
        return {**empty, "title": "Привет", "price": "100 ??", "links": []}
    if path == "garbage":
        # Undeclared and not UTF-8: what detection makes of the bytes is its business.
        return {**empty, "title": _StartsWith("ok "), "links": []}
    if path == "api/items":
        return {**empty, "ids": [7, 8]}
    raise KeyError(path)


ENCODINGS = {
    "": "utf-8",
    **{f"item/{n}": "utf-8" for n in range(ITEMS)},
    "latin1": "cp1252",
    "cyrillic": "cp1251",
    "garbage": None,  # detected, whatever the detector makes of it
    "api/items": "utf-8",
}


@routes.get("/shop/echo")
async def echo(request: web.Request) -> web.Response:
    """The request's headers, names lowercased: to see what a client sent."""
    headers = {name.lower(): value for name, value in request.headers.items()}
    return web.Response(body=json.dumps(headers).encode(), content_type="application/json")
