"""The dashboard: static files shipped in the package, served at ``/`` and ``/static/``.

No build step and nothing from a CDN. Every response carries a Content-Security-Policy
that allows scripts, styles and connections from this origin only, so no inline script
can run even if a crawled string ever reached the page as markup (it never does: the
page builds every node with ``textContent``).
"""

from __future__ import annotations

from importlib.resources import files

from fastapi import FastAPI
from fastapi.responses import Response

__all__ = ["CSP", "STATIC_FILES", "mount_dashboard"]

CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
STATIC_FILES = {
    "app.js": "text/javascript; charset=utf-8",
    "api.js": "text/javascript; charset=utf-8",
    "chart.js": "text/javascript; charset=utf-8",
    "dom.js": "text/javascript; charset=utf-8",
    "app.css": "text/css; charset=utf-8",
}
_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}


def _read(name: str) -> bytes:
    return files("shoal.service").joinpath("static", name).read_bytes()


def mount_dashboard(app: FastAPI, *, token_required: bool) -> None:
    """``GET /`` (the page) and ``GET /static/NAME`` (its scripts and styles)."""
    page = _read("index.html")
    if token_required:
        page = page.replace(b"<body>", b'<body data-token-required="true">', 1)
    assets = {name: (_read(name), kind) for name, kind in STATIC_FILES.items()}

    @app.get("/", include_in_schema=False)
    async def dashboard() -> Response:
        return Response(page, media_type="text/html; charset=utf-8", headers=_HEADERS)

    @app.get("/static/{name}", include_in_schema=False)
    async def static(name: str) -> Response:
        found = assets.get(name)
        if found is None:
            return Response(b"not found\n", status_code=404, media_type="text/plain")
        body, kind = found
        return Response(body, media_type=kind, headers=_HEADERS)
