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
from urllib.parse import urlsplit

from shoal.core.errors import ConfigError
from shoal.core.model import FetchResult, Header, Request

__all__ = ["JobCookies"]

log = logging.getLogger("shoal.engine.fetch.cookies")

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
    when it arrives.

    Cookies a response sets are kept per host, in a small jar of that host's own, so a
    request looks at its host's cookies only, whatever the number of hosts; they go back
    to the host that set them (a ``Domain`` cookie too, never to its sibling hosts).
    Cookies loaded from a file (or a cookie set for a whole domain in an earlier run)
    are in one shared jar that every request is matched against, by the usual rules.
    At most ``max_hosts`` hosts keep cookies.
    """

    def __init__(
        self, *, max_per_host: int = 50, max_bytes: int = 4096, max_hosts: int = 100_000
    ) -> None:
        self._policy = http.cookiejar.DefaultCookiePolicy()
        self._shared = http.cookiejar.MozillaCookieJar(policy=self._policy)
        self._shared_any = False
        self._hosts: dict[str, http.cookiejar.MozillaCookieJar] = {}
        self._max_per_host = max_per_host
        self._max_bytes = max_bytes
        self._max_hosts = max_hosts
        self.dropped = 0
        """Cookies refused for the limits."""

    def __len__(self) -> int:
        return len(self._shared) + sum(len(jar) for jar in self._hosts.values())

    def _all(self) -> list[http.cookiejar.Cookie]:
        return [*self._shared, *(c for jar in self._hosts.values() for c in jar)]

    # -- files ------------------------------------------------------------------

    def load(self, path: str) -> int:
        """Add the cookies of a Netscape ``cookies.txt``; return how many it held. A file
        that cannot be read or parsed raises ``ConfigError``."""
        before = len(self._shared)
        try:
            self._shared.load(path, ignore_discard=True, ignore_expires=False)
        except http.cookiejar.LoadError:  # an OSError too: first
            raise ConfigError(f"{path}: not a Netscape cookies.txt") from None
        except OSError as exc:
            raise ConfigError(f"{path}: {exc.strerror or exc}") from None
        self._shared_any = len(self._shared) > 0
        return len(self._shared) - before

    def save(self, path: str) -> int:
        """Write every cookie (session ones included) as a Netscape ``cookies.txt``, readable
        by this user only; return how many."""
        everything = http.cookiejar.MozillaCookieJar(policy=self._policy)
        for cookie in self._all():
            everything.set_cookie(cookie)
        temporary = f"{path}.tmp-{os.getpid()}"
        try:
            descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            os.close(descriptor)
            everything.save(temporary, ignore_discard=True, ignore_expires=False)
            os.replace(temporary, path)
        except OSError as exc:
            raise ConfigError(f"--save-cookies {path}: {exc.strerror or exc}") from None
        return len(everything)

    # -- the store ------------------------------------------------------------------

    def dumps(self) -> str:
        """The jar as JSON text, for the job's record in the store (``restore``)."""
        return json.dumps([{f: getattr(c, f) for f in _FIELDS} for c in self._all()])

    def restore(self, text: str) -> int:
        """Add the cookies ``dumps`` wrote that the jar does not hold already (a cookie
        loaded from ``--cookies`` wins over the stored one); return how many. What cannot
        be read is skipped: a lost session is not worth failing a run."""
        try:
            items = json.loads(text)
        except ValueError:
            log.warning("the job's stored cookies cannot be read; starting without them")
            return 0
        held = {(c.domain, c.path, c.name) for c in self._all()}
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
            if cookie.domain_initial_dot:
                self._shared.set_cookie(cookie)
                self._shared_any = True
            else:
                jar = self._jar_of(cookie.domain)
                if jar is None:
                    continue
                jar.set_cookie(cookie)
            added += 1
        return added

    def _jar_of(self, host: str) -> http.cookiejar.MozillaCookieJar | None:
        jar = self._hosts.get(host)
        if jar is None:
            if len(self._hosts) >= self._max_hosts:
                self.dropped += 1
                return None
            jar = self._hosts[host] = http.cookiejar.MozillaCookieJar(policy=self._policy)
        return jar

    # -- requests ---------------------------------------------------------------

    def add_to(self, request: Request) -> Request:
        """``request`` with the jar's ``Cookie`` header for its URL, unless it has one of its
        own (a JSON input line's, a ``-H``)."""
        jar = self._hosts.get(request.host)
        if jar is None and not self._shared_any:
            return request
        if any(name.lower() == "cookie" for name, _ in request.headers):
            return request
        parts = []
        for source in (jar, self._shared if self._shared_any else None):
            if source is not None:
                probe = urllib.request.Request(request.url, method=request.method)
                source.add_cookie_header(probe)
                cookie = probe.get_header("Cookie")
                if cookie:
                    parts.append(cookie)
        if not parts:
            return request
        return replace(request, headers=(*request.headers, ("Cookie", "; ".join(parts))))

    def take_from(self, result: FetchResult) -> None:
        """Keep the cookies a response set (for the URL that answered)."""
        if not any(name.lower() == "set-cookie" for name, _ in result.headers):
            return
        url = result.final_url or result.url
        host = (urlsplit(url).hostname or "").rstrip(".")
        jar = self._jar_of(host)
        if jar is None:
            return
        probe = urllib.request.Request(url, method=result.method)
        jar.extract_cookies(_Response(result.headers), probe)  # type: ignore[arg-type]
        self._enforce_limits(jar)

    def _enforce_limits(self, jar: http.cookiejar.MozillaCookieJar) -> None:
        kept = 0
        doomed: list[http.cookiejar.Cookie] = []
        for cookie in jar:
            if len(cookie.name) + len(cookie.value or "") > self._max_bytes:
                doomed.append(cookie)
                continue
            kept += 1
            if kept > self._max_per_host:
                doomed.append(cookie)
        for cookie in doomed:
            jar.clear(cookie.domain, cookie.path, cookie.name)
        if doomed:
            self.dropped += len(doomed)
            log.debug("dropped %d cookies over the per-host limits", len(doomed))
