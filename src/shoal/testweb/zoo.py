"""The hostile-server zoo: every way a server can misbehave, on loopback, at once.

::

    from shoal.testweb.zoo import Zoo

    async with Zoo() as zoo:
        zoo.urls["bomb/gzip"]        # http://127.0.0.200:PORT/zoo/bomb/gzip
        zoo.urls["raw/cl-long"]      # http://127.0.0.203:PORT2/cl-long
        zoo.urls["tls"]              # https://127.0.0.204:PORT3/ (self-signed)
        zoo.index_url                # a page linking to all of them (crawl from here)

What is served where (addresses from ``spec.first_address``, 200 by default):

* site hosts 0-2 (``.200``-``.202``): the testweb site plus the HTTP endpoints of
  :mod:`shoal.testweb._zoo` (bombs, endless and dripping bodies, charsets,
  redirects...). Host 0 has most of them; host 1 is a rate-limited host (a
  storm of ``/zoo/429/{n}`` with ``Retry-After``, and ``/zoo/5xx/{n}``); host 2
  holds the calendar trap.
* ``.203``: the raw server (:mod:`shoal.testweb._raw`): broken status lines,
  headers and framing, resets.
* ``.204``: the same raw server over TLS with a fresh self-signed certificate
  (only when ``cryptography`` is installed; ``urls`` has no ``"tls"`` otherwise).
* ``.205``: a port that refuses connections (a socket bound, never listening,
  held for the zoo's lifetime so no one else gets the port).
* ``unresolvable.invalid``: a name that does not resolve. RFC 6761 reserves
  ``.invalid``; shoal's resolver answers such names itself, so asking never
  leaves the machine.

``shoal testweb --zoo`` serves the same and prints ``urls`` in its ready line.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import Iterator
from types import TracebackType
from typing import Any, Self

from shoal.testweb._bombs import prepare_bombs
from shoal.testweb._raw import RAW_PATHS, RawServer
from shoal.testweb._server import TestWeb, serve_in_thread
from shoal.testweb._tls import self_signed_context, tls_available
from shoal.testweb._zoo import CHARSET_VARIANTS, REDIRECT_SCHEMES, ZooOptions, zoo_routes
from shoal.testweb.site import SiteSpec

__all__ = ["UNRESOLVABLE_HOST", "Zoo", "ZooOptions"]

#: A host name that never resolves (RFC 6761 §6.4).
UNRESOLVABLE_HOST = "unresolvable.invalid"
_THREAD_TIMEOUT = 60.0

# Endpoints of the main zoo host, by name (the path after /zoo/).
_MAIN = (
    "ok",
    "stall",
    "drip",
    "endless",
    "endless-declared",
    "bomb/gzip",
    "bomb/deflate",
    "bomb/br",
    "bomb/zstd",
    "bad-encoding/gzip",
    "bad-encoding/br",
    "bad-encoding/zstd",
    "long-line",
    *(f"charset/{variant}" for variant in CHARSET_VARIANTS),
    "binary",
    "formula",
    "loop/a",
    "chain/50",
    *(f"redirect-scheme/{scheme}" for scheme in REDIRECT_SCHEMES),
)


class Zoo:
    """Serve every zoo endpoint; ``urls`` maps endpoint names to their URLs.

    ``spec`` shapes the underlying site (at least 3 hosts); the raw, TLS and
    refused addresses follow its last host; ``port`` is the site's (0: a free
    one; the other ports are always free ones). ``storm`` is how many
    ``/zoo/429/{n}`` and ``/zoo/5xx/{n}`` URLs the rate-limited host lists.
    ``tls=False`` skips the TLS port.
    """

    __test__ = False

    def __init__(
        self,
        spec: SiteSpec | None = None,
        *,
        options: ZooOptions | None = None,
        storm: int = 8,
        tls: bool = True,
        port: int = 0,
        record: bool = True,
    ) -> None:
        self.spec = spec if spec is not None else SiteSpec(hosts=3, pages=10, first_address=200)
        if self.spec.hosts < 3:
            raise ValueError(f"the zoo needs a site of at least 3 hosts, got {self.spec.hosts}")
        last = self.spec.first_address + self.spec.hosts
        if last + 2 > 254:
            raise ValueError("the zoo needs three more addresses after the site's hosts")
        self.options = options if options is not None else ZooOptions()
        self.storm = storm
        self.web = TestWeb(
            self.spec, port=port, extra_routes=zoo_routes(self.options), record=record
        )
        self.raw = RawServer(f"127.0.0.{last}", drip=self.options.drip)
        self.tls: RawServer | None = None
        if tls and tls_available():
            address = f"127.0.0.{last + 1}"
            self.tls = RawServer(address, tls=self_signed_context(address))
        self._refused_address = f"127.0.0.{last + 2}"
        self._refused: socket.socket | None = None
        self.urls: dict[str, str] = {}
        self._loop: asyncio.AbstractEventLoop | None = None

    async def start(self) -> None:
        await prepare_bombs(self.options.br_mib)  # before the first request can wait for them
        self._refused = _bound_not_listening(self._refused_address)
        try:
            await self.web.start()
            await self.raw.start()
            if self.tls is not None:
                await self.tls.start()
        except BaseException:
            await self.close()
            raise
        self._loop = asyncio.get_running_loop()
        self.urls = self._catalogue()
        self.options.links[:] = [url for name, url in self.urls.items() if name != "index"]

    async def close(self) -> None:
        await self.web.close()
        await self.raw.close()
        if self.tls is not None:
            await self.tls.close()
        if self._refused is not None:
            self._refused.close()
            self._refused = None
        self._loop = None

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    @property
    def index_url(self) -> str:
        """A page on host 0 that links to every endpoint (``/zoo/``)."""
        return self.web.url(0, "/zoo/")

    def _catalogue(self) -> dict[str, str]:
        web = self.web
        urls = {"index": self.index_url}
        urls.update({name: web.url(0, f"/zoo/{name}") for name in _MAIN})
        for n in range(self.storm):
            urls[f"429/{n}"] = web.url(1, f"/zoo/429/{n}")
        for n in range(self.storm):
            urls[f"5xx/{n}"] = web.url(1, f"/zoo/5xx/{n}?p=1")
        urls["calendar"] = web.url(2, "/zoo/calendar/2024/1")
        urls.update({f"raw{path}": self.raw.base_url + path for path in RAW_PATHS})
        if self.tls is not None:
            urls["tls"] = self.tls.base_url + "/"
        assert self._refused is not None
        urls["refused"] = f"http://{self._refused_address}:{self._refused.getsockname()[1]}/"
        urls["dns"] = f"http://{UNRESOLVABLE_HOST}:{web.port}/"
        return urls

    @classmethod
    @contextlib.contextmanager
    def run_in_thread(cls, spec: SiteSpec | None = None, **kwargs: Any) -> Iterator[Zoo]:
        """Serve from a daemon thread with its own event loop for the ``with`` block,
        so that the caller's loop runs nothing of the zoo's."""
        with serve_in_thread(cls(spec, **kwargs), name="shoal-zoo", timeout=_THREAD_TIMEOUT) as zoo:
            yield zoo


def _bound_not_listening(address: str) -> socket.socket:
    """A TCP port on ``address`` that refuses connections while the socket is held."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.bind((address, 0))
    except OSError:
        sock.close()
        raise
    return sock
