"""Fields extracted from a fetched page by the user's rules: bytes in, values out.

A rule is written ``NAME=KIND:EXPRESSION``. Rules are parsed and checked once,
when an ``ExtractRules`` is made (a bad one raises ``ConfigError`` quoting it),
then applied to each page by ``extract_fields``.

``css:SELECTOR`` (HTML pages)
    The first element matching SELECTOR (CSS as lexbor supports it), and of it:
    ``::text`` its text content with runs of whitespace collapsed (the default),
    ``::attr(NAME)`` its attribute NAME (elements without it are passed over;
    a valueless attribute is ``""``), or ``::html`` its outer HTML.
``re:PATTERN`` (any text page: HTML, JSON, XML, ``text/*``)
    The first match of the Python regular expression in the page's decoded
    text (its source, for HTML): group 1 if the pattern has groups, else the
    whole match. Flags go inline: ``re:(?i)price: (\\d+)``.
``json:PATH`` (JSON responses)
    Keys separated by ``.``; ``[N]`` is the Nth element of an array (negative
    counts from the end); ``[]`` is every element. ``json:data.items[].id`` is
    the ``id`` of every item of ``data.items``. A path with ``[]`` gives a list.

A trailing ``[]`` on a ``css:`` or ``re:`` rule collects every match, in
document order, into a list; without it a rule gives its first match, or
``null``. A rule of a kind that does not apply to the page (``css:`` on JSON,
anything on an image) gives ``null``; so does one whose page cannot be parsed
(invalid JSON, markup that would make lexbor quadratic).

Names are letters, digits, ``_`` and ``-`` (up to 64, not starting with a
digit or ``-``), unique within the rules; ``noindex`` is taken (the crawler
records robots ``noindex`` pages under it).

Text is decoded by ``core.charset`` (Content-Type, BOM, ``<meta>``, detection);
the encoding used is returned with the fields. Nothing in the body makes
``extract_fields`` raise.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Literal, NoReturn, TypeAlias

from selectolax.lexbor import LexborHTMLParser, LexborNode, SelectolaxError

from shoal.core.charset import media_type, sniff_encoding
from shoal.core.errors import ConfigError
from shoal.core.links import is_html
from shoal.core.markup import hazardous_markup

__all__ = ["RESERVED_NAMES", "Extraction", "ExtractRules", "FieldRule", "extract_fields"]

RESERVED_NAMES = frozenset({"noindex"})
"""Field names the crawler itself records; a rule cannot take them."""

RuleKind: TypeAlias = Literal["css", "re", "json"]
_Part: TypeAlias = Literal["text", "attr", "html"]
# A JSON path step: a key, an index, or None for every element.
_Step: TypeAlias = str | int | None

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_-]{0,63}")
_PART = re.compile(r"::([A-Za-z-]+)(?:\((.*)\))?\s*$", re.DOTALL)
_ATTRIBUTE_NAME = re.compile(r"[^\s\"'<>/=()]+")
_JSON_STEP = re.compile(r"\.?([^.\[\]]+)|\[(-?\d+)?\]")


@dataclass(frozen=True, slots=True, kw_only=True)
class FieldRule:
    """One rule: ``FieldRule(name="title", rule="css:title::text")``, checked on creation."""

    name: str
    rule: str
    kind: RuleKind = field(init=False, repr=False, compare=False)
    many: bool = field(init=False, repr=False, compare=False)
    """The rule gives a list (trailing ``[]``, or a JSON path with ``[]``)."""
    _selector: str = field(init=False, repr=False, compare=False)
    _part: _Part = field(init=False, repr=False, compare=False)
    _attribute: str = field(init=False, repr=False, compare=False)
    _pattern: re.Pattern[str] | None = field(init=False, repr=False, compare=False)
    _path: tuple[_Step, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not isinstance(self.rule, str):
            raise ConfigError(f"extraction rule {self.name!r}: name and rule must be strings")
        if _NAME.fullmatch(self.name) is None:
            self._fail("a field name is letters, digits, '_' and '-' (at most 64)")
        if self.name in RESERVED_NAMES:
            self._fail(f"the field name {self.name!r} is taken by the crawler; choose another")
        kind, colon, expression = self.rule.strip().partition(":")
        if not colon or kind not in ("css", "re", "json"):
            self._fail("a rule starts with css:, re: or json:")
        expression = expression.strip()
        many = expression.endswith("[]") and kind != "json"
        if many:
            expression = expression[:-2].rstrip()
        if not expression:
            self._fail(f"nothing after {kind}:")
        setattr_ = object.__setattr__
        setattr_(self, "kind", kind)
        setattr_(self, "_selector", "")
        setattr_(self, "_part", "text")
        setattr_(self, "_attribute", "")
        setattr_(self, "_pattern", None)
        setattr_(self, "_path", ())
        if kind == "css":
            self._compile_css(expression)
        elif kind == "re":
            self._compile_re(expression)
        else:
            self._compile_json(expression)
            many = None in self._path
        setattr_(self, "many", many)

    @classmethod
    def parse(cls, text: str) -> FieldRule:
        """A rule from its command-line form, ``NAME=RULE``."""
        name, equals, rule = text.partition("=")
        if not equals:
            raise ConfigError(f"extraction rule {text!r}: expected NAME=RULE")
        return cls(name=name.strip(), rule=rule.strip())

    def _fail(self, problem: str) -> NoReturn:
        raise ConfigError(f"extraction rule {_quoted(self.name, self.rule)}: {problem}")

    def _compile_css(self, expression: str) -> None:
        selector, part, attribute = expression, "text", ""
        at = expression.rfind("::")
        suffix = _PART.fullmatch(expression, at) if at >= 0 else None
        if suffix is not None:
            selector = expression[:at].strip()
            name, argument = suffix.group(1).lower(), suffix.group(2)
            if name == "attr" and argument is not None:
                part, attribute = "attr", argument.strip().lower()
                if _ATTRIBUTE_NAME.fullmatch(attribute) is None:
                    self._fail(f"{argument!r} is not an attribute name")
            elif name in ("text", "html") and argument is None:
                part = name
            else:
                self._fail(f"unknown ::{name}; use ::text, ::attr(NAME) or ::html")
        if not selector:
            self._fail("no CSS selector")
        try:
            LexborHTMLParser("").css(selector)  # a tree of its own: rules may be made in any thread
        except (SelectolaxError, ValueError):
            self._fail(f"{selector!r} is not a CSS selector lexbor understands")
        object.__setattr__(self, "_selector", selector)
        object.__setattr__(self, "_part", part)
        object.__setattr__(self, "_attribute", attribute)

    def _compile_re(self, expression: str) -> None:
        try:
            pattern = re.compile(expression)
        except (re.error, OverflowError, RecursionError) as exc:
            self._fail(f"not a regular expression: {exc}")
        object.__setattr__(self, "_pattern", pattern)

    def _compile_json(self, expression: str) -> None:
        steps: list[_Step] = []
        at = 0
        while at < len(expression):
            step = _JSON_STEP.match(expression, at)
            if step is None or (step.group(0).startswith(".") and at == 0):
                self._fail(f"cannot read the JSON path at {expression[at:]!r}")
            key, index = step.group(1), step.group(2)
            if key is not None:
                steps.append(key.strip())
            else:
                steps.append(None if index is None else int(index))
            at = step.end()
        object.__setattr__(self, "_path", tuple(steps))

    # -- applying ----------------------------------------------------------

    def _from_tree(self, tree: LexborHTMLParser) -> object:
        part = self._part
        if part == "attr":
            attribute = self._attribute
            values = [
                value if value is not None else ""
                for node in tree.css(self._selector)
                if attribute in (attributes := node.attributes)
                for value in (attributes[attribute],)
            ]
            return values if self.many else (values[0] if values else None)
        if self.many:
            return [_node_value(node, part) for node in tree.css(self._selector)]
        first = tree.css_first(self._selector)
        return None if first is None else _node_value(first, part)

    def _from_text(self, text: str) -> object:
        pattern = self._pattern
        assert pattern is not None
        group = 1 if pattern.groups else 0
        if self.many:
            return [
                found
                for match in pattern.finditer(text)
                if (found := match.group(group)) is not None
            ]
        match = pattern.search(text)
        return None if match is None else match.group(group)

    def _from_json(self, document: object) -> object:
        values = [document]
        for step in self._path:
            if isinstance(step, str):
                values = [v[step] for v in values if isinstance(v, dict) and step in v]
            elif step is None:
                values = [item for v in values if isinstance(v, list) for item in v]
            else:
                values = [
                    v[step] for v in values if isinstance(v, list) and -len(v) <= step < len(v)
                ]
        return values if self.many else (values[0] if values else None)


def _quoted(name: str, rule: str) -> str:
    return repr(f"{name}={rule}")


def _node_value(node: LexborNode, part: _Part) -> str:
    if part == "html":
        return node.html or ""
    return " ".join(node.text(deep=True).split())


@dataclass(frozen=True, slots=True, kw_only=True)
class ExtractRules:
    """The rules of a job, in order (the order of the exported columns)."""

    rules: tuple[FieldRule, ...]

    def __post_init__(self) -> None:
        if not self.rules:
            raise ConfigError("no extraction rules given")
        seen: set[str] = set()
        for rule in self.rules:
            if not isinstance(rule, FieldRule):
                raise ConfigError(f"expected FieldRule, got {type(rule).__name__}")
            if rule.name in seen:
                raise ConfigError(
                    f"extraction rule {_quoted(rule.name, rule.rule)}: the name "
                    f"{rule.name!r} is used twice"
                )
            seen.add(rule.name)

    @classmethod
    def of(cls, rules: Mapping[str, str] | Iterable[str]) -> ExtractRules:
        """Rules from ``{"title": "css:title::text"}`` or ``["title=css:title::text"]``."""
        if isinstance(rules, str):
            raise ConfigError("extraction rules must be a mapping or a list of NAME=RULE")
        if isinstance(rules, Mapping):
            return cls(rules=tuple(FieldRule(name=n, rule=r) for n, r in rules.items()))
        return cls(rules=tuple(FieldRule.parse(text) for text in rules))

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(rule.name for rule in self.rules)

    def as_record(self) -> list[str]:
        """``["name=rule", ...]`` in rule order — a list, so that the order survives JSON
        with sorted keys: what a job records, and what ``of`` reads back."""
        return [f"{rule.name}={rule.rule}" for rule in self.rules]


@dataclass(frozen=True, slots=True)
class Extraction:
    """The fields of one page (every rule's name, in rule order), and the encoding its
    text was decoded with (None when nothing needed decoding)."""

    fields: dict[str, object]
    encoding: str | None


_JSON_TYPES = ("json",)
_TEXT_SUFFIXES = ("json", "xml", "javascript", "ecmascript")


def extract_fields(body: bytes, rules: ExtractRules, *, content_type: str | None) -> Extraction:
    """Apply ``rules`` to one page's (decoded, uncompressed) body."""
    kind = media_type(content_type)[0] if content_type else ""
    html = is_html(body, content_type)
    texty = html or not kind or kind.startswith("text/") or kind.endswith(_TEXT_SUFFIXES)
    fields: dict[str, object] = dict.fromkeys(rules.names)
    if not texty or not body:
        return Extraction(fields, None)
    codec, _source, skip = sniff_encoding(body, content_type)
    text: str | None = None

    def decoded() -> str:
        nonlocal text
        if text is None:
            data = body[skip:] if skip else body
            try:
                text = data.decode(codec, "replace")
            except (LookupError, ValueError, UnicodeError):
                text = data.decode("utf-8", "replace")
        return text

    tree: LexborHTMLParser | None = None
    document: object = _UNPARSED
    for rule in rules.rules:
        if rule.kind == "re":
            fields[rule.name] = rule._from_text(decoded())
        elif rule.kind == "css":
            if not html:
                continue
            if tree is None:
                tree = _parse_html(body, body[skip:] if codec == "utf-8" else decoded())
                if tree is None:
                    html = False  # unparseable: every css rule stays null
                    continue
            try:
                fields[rule.name] = rule._from_tree(tree)
            except (SelectolaxError, ValueError, RecursionError):
                fields[rule.name] = None
        else:
            if document is _UNPARSED:
                document = _parse_json(kind, html, decoded)
            if document is not _UNPARSED and document is not _INVALID:
                fields[rule.name] = rule._from_json(document)
    return Extraction(fields, codec)


_UNPARSED = object()
_INVALID = object()


def _parse_html(body: bytes, source: bytes | str) -> LexborHTMLParser | None:
    """The tree of ``source`` (UTF-8 bytes, or text), unless ``body`` is a hazard to lexbor."""
    if hazardous_markup(body):
        return None
    try:
        return LexborHTMLParser(source)
    except (SelectolaxError, ValueError, MemoryError):
        return None


def _parse_json(kind: str, html: bool, decoded: Callable[[], str]) -> object:
    if html:
        return _INVALID
    text = decoded().lstrip("\ufeff \t\r\n")
    if not (kind.endswith(_JSON_TYPES) or text[:1] in ("{", "[")):
        return _INVALID
    try:
        return json.loads(text)
    except (ValueError, RecursionError):
        return _INVALID
