"""Extraction rules: parsing (and refusing) rules, and applying them to pages of every kind."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shoal.core.errors import ConfigError
from shoal.core.extract import ExtractRules, FieldRule, extract_fields

from ..shop import GARBAGE

PRODUCT = b"""<!doctype html>
<html><head><title>  Blue
   Kettle  </title><meta name="description" content="A kettle"></head>
<body>
  <h1 class="name">Blue <b>Kettle</b></h1>
  <p class="price">19.99 \xe2\x82\xac</p>
  <p class="price sale">14.99 \xe2\x82\xac</p>
  <ul><li><a href="/a">A</a></li><li><a>no href</a></li><li><a href="/b" rel=next>B</a></li></ul>
  <input type="checkbox" checked>
  <script>var sku = "SKU-1234"; var other = "SKU-5678";</script>
</body></html>"""


def fields(
    rules: dict[str, str], body: bytes, content_type: str | None = "text/html"
) -> dict[str, object]:
    return extract_fields(body, ExtractRules.of(rules), content_type=content_type).fields


@pytest.mark.parametrize(
    ("rule", "value"),
    [
        ("css:title", "Blue Kettle"),
        ("css:title::text", "Blue Kettle"),
        ("css:h1.name::text", "Blue Kettle"),
        ("css:.price::text", "19.99 €"),
        ("css:.price::text[]", ["19.99 €", "14.99 €"]),
        ("css:p.sale", "14.99 €"),
        ("css:a::attr(href)", "/a"),
        ("css:a::attr(href)[]", ["/a", "/b"]),
        ("css:a::attr(HREF)[]", ["/a", "/b"]),
        ("css:a[rel=next]::attr(href)", "/b"),
        ('css:meta[name="description"]::attr(content)', "A kettle"),
        ("css:input::attr(checked)", ""),
        ("css:.price::html", '<p class="price">19.99 €</p>'),
        ("css:li > a::text[]", ["A", "no href", "B"]),
        ("css:.missing::text", None),
        ("css:.missing::text[]", []),
        ("css:a::attr(title)", None),
        (r"re:SKU-(\d+)", "1234"),
        (r"re:SKU-\d+", "SKU-1234"),
        (r"re:SKU-(\d+)[]", ["1234", "5678"]),
        (r"re:(?i)sku-(?P<n>\d+)", "1234"),
        (r"re:(x)?SKU-5678", None),  # group 1 did not take part
        (r"re:(x)?SKU-\d+[]", []),
        ("re:nothing like this", None),
        ("re:nothing like this[]", []),
        ("json:a.b", None),  # JSON rules do not apply to HTML
    ],
)
def test_rules_on_an_html_page(rule: str, value: object) -> None:
    assert fields({"f": rule}, PRODUCT) == {"f": value}


API = json.dumps(
    {
        "data": {
            "items": [{"id": 1, "tags": ["x", "y"]}, {"id": 2, "tags": []}, {"name": "no id"}],
            "total": 3,
            "owner": None,
        },
        "list": [[1, 2], [3]],
        "ok": True,
    }
).encode()


@pytest.mark.parametrize(
    ("rule", "value"),
    [
        ("json:data.total", 3),
        ("json:ok", True),
        ("json:data.owner", None),
        ("json:data.items[0].id", 1),
        ("json:data.items[-1].name", "no id"),
        ("json:data.items[5].id", None),
        ("json:data.items[].id", [1, 2]),
        ("json:data.items[].tags[]", ["x", "y"]),
        ("json:data.items[0]", {"id": 1, "tags": ["x", "y"]}),
        ("json:list[][]", [1, 2, 3]),
        ("json:list[1][0]", 3),
        ("json:data.nope", None),
        ("json:data.nope[]", []),
        ("json:data.total.deeper", None),
        ("json:data[0]", None),
        (r're:"total": (\d+)', "3"),
        ("css:title", None),  # CSS rules do not apply to JSON
    ],
)
def test_rules_on_a_json_response(rule: str, value: object) -> None:
    assert fields({"f": rule}, API, "application/json") == {"f": value}


def test_json_is_recognised_by_suffix_or_by_its_first_character() -> None:
    body = b'{"a": [1, 2]}'
    for content_type in ("application/vnd.api+json", "text/plain", None):
        assert fields({"a": "json:a[]"}, body, content_type) == {"a": [1, 2]}
    assert fields({"a": "json:[1].x"}, b'[{}, {"x": "y"}]', "application/json") == {"a": "y"}


def test_invalid_or_absurd_json_gives_nulls() -> None:
    rules = {"a": "json:a", "b": "json:a[]"}
    assert fields(rules, b'{"a": 1', "application/json") == {"a": None, "b": None}
    deep = b"[" * 100_000 + b"]" * 100_000
    assert fields(rules, deep, "application/json") == {"a": None, "b": None}


def test_every_rule_has_its_key_in_rule_order() -> None:
    rules = {"z": "css:title", "a": "re:nothing", "m": "json:x"}
    assert list(fields(rules, PRODUCT)) == ["z", "a", "m"]


def test_binary_responses_give_nulls_and_no_encoding() -> None:
    rules = ExtractRules.of({"t": "css:title", "r": "re:.", "j": "json:a"})
    extraction = extract_fields(
        b"\x89PNG\r\n\x1a\n<title>x</title>", rules, content_type="image/png"
    )
    assert extraction.fields == {"t": None, "r": None, "j": None}
    assert extraction.encoding is None


def test_text_is_decoded_with_the_pages_encoding() -> None:
    page = '<html><head><meta charset="windows-1251"><title>Чайник</title></head></html>'
    extraction = extract_fields(
        page.encode("cp1251"),
        ExtractRules.of({"t": "css:title", "r": "re:<title>(.*?)</"}),
        content_type="text/html",
    )
    assert extraction.fields == {"t": "Чайник", "r": "Чайник"}
    assert extraction.encoding == "cp1251"


def test_undecodable_bytes_never_raise() -> None:
    rules = ExtractRules.of({"t": "css:title", "r": r"re:ok (\S+)", "j": "json:a"})
    extraction = extract_fields(GARBAGE, rules, content_type="text/html")
    assert isinstance(extraction.fields["t"], str) and extraction.fields["t"].startswith("ok ")
    assert extraction.encoding is not None


def test_markup_that_would_make_lexbor_quadratic_is_not_parsed() -> None:
    body = b"<html><title>deep</title>" + b"<div>" * 200_000
    rules = ExtractRules.of({"t": "css:title", "r": "re:<title>(.*?)</"})
    assert extract_fields(body, rules, content_type="text/html").fields == {"t": None, "r": "deep"}


@settings(max_examples=200, deadline=None)
@given(
    body=st.binary(max_size=3000),
    content_type=st.sampled_from(
        [None, "text/html", "application/json", "text/plain; charset=utf-16"]
    ),
)
def test_any_body_gives_a_value_or_null_for_every_rule(
    body: bytes, content_type: str | None
) -> None:
    rules = ExtractRules.of(
        {"t": "css:title", "l": "css:a::attr(href)[]", "r": r"re:(\w+)[]", "j": "json:a[].b"}
    )
    extraction = extract_fields(body, rules, content_type=content_type)
    assert list(extraction.fields) == ["t", "l", "r", "j"]


# --- parsing rules ---


def test_rules_from_a_mapping_or_cli_strings_are_the_same() -> None:
    from_map = ExtractRules.of({"title": "css:title::text", "n": r"re:n=(\d+)[]"})
    from_cli = ExtractRules.of(["title=css:title::text", r" n = re:n=(\d+)[] "])
    assert from_map == from_cli
    assert from_map.names == ("title", "n")
    assert from_map.as_record() == ["title=css:title::text", r"n=re:n=(\d+)[]"]
    assert ExtractRules.of(from_map.as_record()) == from_map


@pytest.mark.parametrize(
    ("rule", "many"),
    [
        ("css:a", False),
        ("css:a[]", True),
        ("css:a[href]", False),
        ("css:a[href][]", True),
        ("css:a::attr(href) []", True),
        ("re:x", False),
        ("re:x[]", True),
        ("re:[]x]", False),
        ("json:a", False),
        ("json:a[0]", False),
        ("json:a[]", True),
        ("json:a[].b", True),
    ],
)
def test_which_rules_collect_a_list(rule: str, many: bool) -> None:
    assert FieldRule(name="f", rule=rule).many is many


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("title", "expected NAME=RULE"),
        ("=css:title", "field name"),
        ("1st=css:title", "field name"),
        ("a b=css:title", "field name"),
        ("noindex=css:title", "taken by the crawler"),
        ("title=", "starts with css:, re: or json:"),
        ("title=title::text", "starts with css:, re: or json:"),
        ("title=xpath://title", "starts with css:, re: or json:"),
        ("title=css:", "nothing after css:"),
        ("title=css:[]", "nothing after css:"),
        ("title=css:::text", "no CSS selector"),
        ("title=css:title::txt", "unknown ::txt"),
        ("title=css:title::text(x)", "unknown ::text"),
        ("title=css:a::attr()", "not an attribute name"),
        ("title=css:a::attr(a b)", "not an attribute name"),
        ("title=css:a[", "not a CSS selector"),
        ("title=css:div >", "not a CSS selector"),
        ("title=css:p:contains(x)", "not a CSS selector"),
        ("n=re:(", "not a regular expression"),
        ("n=re:a{2,1}", "not a regular expression"),
        ("n=json:a..b", "cannot read the JSON path"),
        ("n=json:.a", "cannot read the JSON path"),
        ("n=json:a[x]", "cannot read the JSON path"),
        ("n=json:a[", "cannot read the JSON path"),
    ],
)
def test_bad_rules_are_refused_with_the_rule_quoted(text: str, problem: str) -> None:
    with pytest.raises(ConfigError) as caught:
        ExtractRules.of([text])
    message = str(caught.value)
    assert problem in message
    if "=" in text:
        name, _, rule = text.partition("=")
        assert repr(f"{name.strip()}={rule.strip()}") in message
    else:
        assert repr(text) in message


def test_names_are_unique_and_rules_not_empty() -> None:
    with pytest.raises(ConfigError, match="'a' is used twice"):
        ExtractRules.of(["a=css:a", "a=css:b"])
    with pytest.raises(ConfigError, match="no extraction rules"):
        ExtractRules.of({})
    with pytest.raises(ConfigError, match="mapping or a list"):
        ExtractRules.of("title=css:title")
    with pytest.raises(ConfigError, match="must be strings"):
        ExtractRules.of({"a": 1})  # type: ignore[dict-item]
