"""HTML that lexbor should not be given, and the linear scanner that reads it instead.

Pathological markup: lexbor's tree builder is quadratic in two cases — block
elements nested thousands deep (each start tag walks the stack of open
elements) and one element with thousands of distinct attributes. Bodies over
``SCREEN_ABOVE`` bytes are screened for both at C speed (``looks_hazardous``);
a body that is hazardous is not given to lexbor but scanned with a linear
regular-expression scanner (``scan_elements``) that finds the same elements,
less faithfully (it does not know about scripts). Small bodies are not
screened: their worst case is bounded (about 25 ms).

Link-dense pages: a page of more than ``DENSE_TAGS`` tags is not given to
lexbor either, whose tree costs about twenty times the page, but to the same
scanner, which keeps only the elements it needs and stops after a given number
of link elements: such a page costs about its decoded text in memory.
"""

from __future__ import annotations

import html
import re
from typing import NamedTuple

__all__ = [
    "DENSE_TAGS",
    "SCREEN_ABOVE",
    "ScannedElement",
    "hazardous_markup",
    "looks_hazardous",
    "scan_elements",
]

# A page with more tags than this is scanned, not parsed: lexbor's tree of it would
# take hundreds of bytes a node.
DENSE_TAGS = 50_000

# Below SCREEN_ABOVE bytes nesting is at most ~3,000 deep and an element has at
# most ~4,000 attributes: ~25 ms at worst, not worth screening every page for.
SCREEN_ABOVE = 16 * 1024
# An element with _MAX_ATTRIBUTES attributes is a tag of some KiB: a stretch of
# _LONG_RUN bytes without ">", which one memchr() per _PROBE_STRIDE bytes finds.
_MAX_ATTRIBUTES = 1024
_LONG_RUN = 4096
_PROBE_STRIDE = 2048
_LONG_TAG = re.compile(rb"<[A-Za-z][^<>]{%d}" % _LONG_RUN)  # tries start at "<": linear
_TAG_RUN = re.compile(rb"[^<>]*")
# Nesting deeper than _MAX_SHALLOW_DEPTH needs more tags than that; past it the
# running balance of "<" over "</" is sampled every _DEPTH_WINDOW bytes, and
# only a high balance (void elements and unclosed paragraphs inflate it) is
# looked at closely.
_MAX_SHALLOW_DEPTH = 2048
_DEPTH_WINDOW = 4096
_MAX_SCOPE_STEPS = 2_000_000
_SCOPE_STEPS_PER_TAG = 100
_TAG_NAME = re.compile(rb"<(/?)([A-Za-z][A-Za-z0-9]*)")
# Elements that never deepen the stack: void ones, and ones a sibling closes.
_FLAT_ELEMENTS = frozenset(
    b"area base br col embed hr img input link meta source track wbr param keygen frame "
    b"basefont bgsound image p li dd dt option optgroup tr td th thead tbody tfoot colgroup "
    b"caption rb rt rp rtc a html head body".split()
)


class ScannedElement(NamedTuple):
    """An element ``scan_elements`` found: its lowercase tag and the attributes read."""

    tag: str
    attributes: dict[str, str | None]  # None: a valueless attribute


def hazardous_markup(body: bytes) -> bool:
    """Whether lexbor may take time quadratic in the size of ``body`` to parse it (see the
    module docstring): such a body should not be given to lexbor."""
    return len(body) > SCREEN_ABOVE and looks_hazardous(body)


def looks_hazardous(body: bytes) -> bool:
    """Whether lexbor may take time quadratic in the size of ``body``, at any size."""
    return _has_attribute_bomb(body) or _has_deep_nesting(body)


def _has_attribute_bomb(body: bytes) -> bool:
    if not _has_long_run(body):
        return False
    # Tags over _LONG_RUN bytes: count their attributes (roughly: words). The
    # runs between "<" and ">" do not overlap, so this is linear.
    for long_tag in _LONG_TAG.finditer(body):
        run = _TAG_RUN.match(body, long_tag.start() + 1)
        if run is not None and len(run.group().split()) > _MAX_ATTRIBUTES:
            return True
    return False


def _has_long_run(body: bytes) -> bool:
    """Whether ``body`` may have a tag of ``_LONG_RUN`` bytes: a stretch without ">".

    A stretch that long contains a whole aligned window of ``_PROBE_STRIDE``
    bytes; a window without ">" is a maybe (then ``_LONG_TAG`` decides).
    """
    find = body.find
    return any(
        find(b">", start, start + _PROBE_STRIDE) < 0
        for start in range(0, len(body) - _PROBE_STRIDE + 1, _PROBE_STRIDE)
    )


def _has_deep_nesting(body: bytes) -> bool:
    """Whether block elements may nest deep enough to make lexbor quadratic."""
    if body.count(b"<") <= _MAX_SHALLOW_DEPTH:
        return False
    level = 0
    for start in range(0, len(body), _DEPTH_WINDOW):
        end = start + _DEPTH_WINDOW
        level += body.count(b"<", start, end) - 2 * body.count(b"</", start, end)
        if level > _MAX_SHALLOW_DEPTH:
            steps, tags = _scope_steps(body)
            return steps > _MAX_SCOPE_STEPS + _SCOPE_STEPS_PER_TAG * tags
    return False


def _scope_steps(body: bytes) -> tuple[int, int]:
    """An estimate of the open-element stack entries the tree builder will walk.

    Each start or end tag of an element that can nest walks the stack of open
    elements (to check what is "in scope"); the estimate adds up the depth at
    each one. Returns ``(steps, number of tags)``.
    """
    tags = _TAG_NAME.findall(body)
    depth = steps = 0
    for close, name in tags:
        if close:
            steps += depth
            if depth:
                depth -= 1
        elif name.lower() not in _FLAT_ELEMENTS:
            steps += depth
            depth += 1
    return steps, len(tags)


# The scanner: linear, as "[^<>]*" stops at the next "<" or ">".
# Comments are skipped (an unclosed one runs to the end, as in a browser): one lazy
# run from each "<!--", which ends the scan when it reaches the end, so still linear.
_TAG = re.compile(
    r"<!--.*?(?:-->|\Z)|<(a|area|link|frame|iframe|base|meta)(?=[\s/>])([^<>]*)", re.I | re.S
)
_ATTRIBUTE = re.compile(r"""([^\s"'<>/=]+)(?:\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s>]*)))?""")
_WANTED = frozenset({"href", "src", "rel", "name", "content"})
_REQUIRED = {  # as in the selector of core.links
    "a": ("href",),
    "area": ("href",),
    "link": ("href", "rel"),
    "frame": ("src",),
    "iframe": ("src",),
    "base": ("href",),
    "meta": ("name",),
}


def scan_elements(text: str, max_links: int | None) -> tuple[list[ScannedElement], bool]:
    """The link, base and meta elements of ``text`` found by regular expressions: no more
    than ``max_links`` link elements (None: all), and whether some were left. A link
    element found twice counts twice, so a page repeating few links keeps
    ``max_links`` elements, not all of its own."""
    elements: list[ScannedElement] = []
    links = 0
    for tag in _TAG.finditer(text):
        if tag.group(1) is None:  # a comment
            continue
        attrs: dict[str, str | None] = {}
        for attribute in _ATTRIBUTE.finditer(tag.group(2)):
            name, double, single, bare = attribute.groups()
            name = name.lower()
            if name in _WANTED and name not in attrs:  # the first one wins
                value = double if double is not None else single if single is not None else bare
                attrs[name] = None if value is None else html.unescape(value)
        name = tag.group(1).lower()
        if all(required in attrs for required in _REQUIRED[name]):
            if name != "base" and name != "meta":
                if max_links is not None and links >= max_links:
                    return elements, True
                links += 1
            elements.append(ScannedElement(name, attrs))
    return elements, False
