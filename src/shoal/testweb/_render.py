"""Response bodies of the synthetic site, as pure functions of the spec and base URLs."""

from __future__ import annotations

import gzip
from collections.abc import Sequence
from html import escape
from xml.sax.saxutils import escape as xml_escape

from shoal.testweb.site import PageRef, SiteSpec, href_for, index_links, page_links

__all__ = [
    "ERROR_HTML",
    "STATIC_HTML",
    "page_html",
    "sitemap_gz",
    "sitemap_index_xml",
    "sitemap_xml",
]

STATIC_HTML = (
    b'<!doctype html>\n<html><head><meta charset="utf-8"><title>static</title></head>'
    b"<body><p>static</p></body></html>\n"
)
ERROR_HTML = b"<!doctype html>\n<html><body><h1>500 Internal Server Error</h1></body></html>\n"

_FILLER = (
    "Shoals of small fish move as one body, turning together without a leader; "
    "each keeps its distance from the next and follows the neighbours it can see. "
)


def _filler(size: int) -> str:
    if size <= 0:
        return ""
    repeats = size // len(_FILLER) + 1
    return (_FILLER * repeats)[:size]


def page_html(spec: SiteSpec, base_urls: Sequence[str], ref: PageRef) -> bytes:
    """The HTML of ``ref`` (an index or a page), padded to about ``spec.page_bytes``."""
    if ref.page is None:
        title = f"host {ref.host} index"
        targets = index_links(spec, ref.host)
    else:
        title = f"host {ref.host} page {ref.page}"
        targets = page_links(spec, ref.host, ref.page)
    items = "".join(
        f'<li><a href="{escape(href_for(spec, base_urls, ref, slot, target))}">'
        f"{escape(target.path)} on host {target.host}</a></li>\n"
        for slot, target in enumerate(targets)
    )
    head = (
        '<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{title}</title></head>\n<body>\n<h1>{title}</h1>\n<ul>\n{items}</ul>\n"
    )
    tail = "</body></html>\n"
    padding = spec.page_bytes - len(head) - len(tail) - len("<p></p>\n")
    if padding > 0:
        head += f"<p>{_filler(padding)}</p>\n"
    return (head + tail).encode()


def sitemap_xml(spec: SiteSpec, base_url: str, host: int) -> bytes:
    """A sitemaps.org ``urlset`` listing the index and every page of ``host``."""
    refs = [PageRef(host, None), *(PageRef(host, n) for n in range(spec.pages))]
    urls = "".join(f"<url><loc>{xml_escape(base_url + ref.path)}</loc></url>\n" for ref in refs)
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">\n'
        f"{urls}</urlset>\n"
    ).encode()


def sitemap_index_xml(base_url: str) -> bytes:
    """A sitemaps.org ``sitemapindex`` pointing at the gzipped sitemap."""
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<sitemapindex xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">\n'
        f"<sitemap><loc>{xml_escape(base_url)}/sitemap-1.xml.gz</loc></sitemap>\n"
        "</sitemapindex>\n"
    ).encode()


def sitemap_gz(spec: SiteSpec, base_url: str, host: int) -> bytes:
    """:func:`sitemap_xml`, gzipped with a fixed mtime so the bytes are reproducible."""
    return gzip.compress(sitemap_xml(spec, base_url, host), mtime=0)
