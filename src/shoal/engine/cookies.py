"""A job's cookies: one jar per run, kept like a browser session, per host.

Cookies are sent and taken in the crawler's process, whatever does the HTTP:
the ``Cookie`` header is added to a request before it goes out (to this
process's session or to a fetch process), and ``Set-Cookie`` is read from
the response headers that come back with every attempt. So fetch processes
need nothing of their own, and every cookie passes through one jar.

The jar is the standard library's ``MozillaCookieJar``: RFC 6265 domain,
path, expiry and ``Secure`` rules, and the Netscape ``cookies.txt`` format
curl and wget read and write (``--cookies FILE``, ``--save-cookies FILE``).
Cookies from IP-address hosts are kept (as curl does), for that address only.

Limits: the jar keeps at most ``max_per_host`` cookies per host and none
larger than ``max_bytes`` (name and value), the minimums RFC 6265 §6.1 asks
a client to support; what a response sets past them is dropped and counted.
"""

from __future__ import annotations

import email.message
import http.cookiejar
import json
import logging
import os
import urllib.request
from collections.abc import Sequence
from dataclasses import replace

from shoal.core.errors import ConfigError
from shoal.core.model import FetchResult, Header, Request

__all__ = ["JobCookies"]

log = logging.getLogger("shoal.engine.cookies")

# What a stored cookie keeps (http.cookiejar.Cookie's attributes, port and comments aside).
_FIELDS = (
    "version", "name", "value", "domain", "domain_specified", "domain_initial_dot", "path",
    "path_specified", "secure", "expires", "discard",
)  # fmt: skip


class _Response:
    """The one method ``CookieJar.extract_cookies`` needs of a response."""

    def __init__(self, headers: Sequence[Header]) -> None:
        self._message = email.message.Message()
        for name, value in headers:
            if name.lower() in ("set-cookie", "set-cookie2"):
                self._message[name] = value

    def info(self) -> email.message.Message:
        return self._message


class JobCookies:
    """A run's cookie jar. ``add_to`` a request before it is sent; ``take_from`` a result
    when it arrives."""

    def __init__(self, *, max_per_host: int = 50, max_bytes: int = 4096) -> None:
        self._jar = http.cookiejar.MozillaCookieJar()
        self._max_per_host = max_per_host
        self._max_bytes = max_bytes
        self.dropped = 0
        """Cookies refused for the limits."""

    def __len__(self) -> int:
        return len(self._jar)

    # -- files ------------------------------------------------------------------

    def load(self, path: str) -> int:
        """Add the cookies of a Netscape ``cookies.txt``; return how many it held. A file
        that cannot be read or parsed raises ``ConfigError``."""
        before = len(self._jar)
        try:
            self._jar.load(path, ignore_discard=True, ignore_expires=False)
        except http.cookiejar.LoadError:  # an OSError too: first
            raise ConfigError(f"{path}: not a Netscape cookies.txt") from None
        except OSError as exc:
            raise ConfigError(f"{path}: {exc.strerror or exc}") from None
        return len(self._jar) - before

    def save(self, path: str) -> int:
        """Write every cookie (session ones included) as a Netscape ``cookies.txt``, readable
        by this user only; return how many."""
        temporary = f"{path}.tmp-{os.getpid()}"
        try:
            descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            os.close(descriptor)
            self._jar.save(temporary, ignore_discard=True, ignore_expires=False)
            os.replace(temporary, path)
        except OSError as exc:
            raise ConfigError(f"--save-cookies {path}: {exc.strerror or exc}") from None
        return len(self._jar)

    # -- the store ------------------------------------------------------------------

    def dumps(self) -> str:
        """The jar as JSON text, for the job's record in the store (``restore``)."""
        return json.dumps([{f: getattr(c, f) for f in _FIELDS} for c in self._jar])

    def restore(self, text: str) -> int:
        """Add the cookies ``dumps`` wrote that the jar does not hold already (a cookie
        loaded from ``--cookies`` wins over the stored one); return how many. What cannot
        be read is skipped: a lost session is not worth failing a run."""
        try:
            items = json.loads(text)
        except ValueError:
            log.warning("the job's stored cookies cannot be read; starting without them")
            return 0
        held = {(c.domain, c.path, c.name) for c in self._jar}
        added = 0
        for item in items if isinstance(items, list) else ():
            try:
                cookie = http.cookiejar.Cookie(
                    **{f: item[f] for f in _FIELDS}, port=None, port_specified=False,
                    comment=None, comment_url=None, rest={},
                )  # fmt: skip
            except (KeyError, TypeError):
                continue
            if (cookie.domain, cookie.path, cookie.name) in held:
                continue
            self._jar.set_cookie(cookie)
            added += 1
        self._jar.clear_expired_cookies()
        return added

    # -- requests ---------------------------------------------------------------

    def add_to(self, request: Request) -> Request:
        """``request`` with the jar's ``Cookie`` header for its URL, unless it has one of its
        own (a JSON input line's, a ``-H``)."""
        if not len(self._jar) or any(name.lower() == "cookie" for name, _ in request.headers):
            return request
        probe = urllib.request.Request(request.url, method=request.method)
        self._jar.add_cookie_header(probe)
        cookie = probe.get_header("Cookie")
        if not cookie:
            return request
        return replace(request, headers=(*request.headers, ("Cookie", cookie)))

    def take_from(self, result: FetchResult) -> None:
        """Keep the cookies a response set (for the URL that answered)."""
        if not any(name.lower() == "set-cookie" for name, _ in result.headers):
            return
        url = result.final_url or result.url
        probe = urllib.request.Request(url, method=result.method)
        self._jar.extract_cookies(_Response(result.headers), probe)  # type: ignore[arg-type]
        self._enforce_limits()

    def _enforce_limits(self) -> None:
        per_host: dict[str, int] = {}
        doomed: list[http.cookiejar.Cookie] = []
        for cookie in self._jar:
            host = cookie.domain.lstrip(".")
            size = len(cookie.name) + len(cookie.value or "")
            per_host[host] = per_host.get(host, 0) + 1
            if size > self._max_bytes or per_host[host] > self._max_per_host:
                doomed.append(cookie)
        for cookie in doomed:
            self._jar.clear(cookie.domain, cookie.path, cookie.name)
        if doomed:
            self.dropped += len(doomed)
            log.debug("dropped %d cookies over the per-host limits", len(doomed))
