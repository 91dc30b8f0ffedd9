"""Text decoding: BOM, header, document declaration, UTF-8, detection, fallback — never a crash."""

from __future__ import annotations

import codecs

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shoal.core.charset import PRESCAN_BYTES, codec_for, decode, media_type, sniff_encoding

CAFE = "<p>Café crème, Grüße</p>"


@pytest.mark.parametrize(
    ("body", "content_type", "encoding", "source", "text"),
    [
        # The header names it.
        (CAFE.encode("cp1252"), "text/html; charset=windows-1252", "cp1252", "header", CAFE),
        (CAFE.encode(), "text/html; charset=UTF-8", "utf-8", "header", CAFE),
        (CAFE.encode(), 'text/html; charset="utf-8"', "utf-8", "header", CAFE),
        # WHATWG: latin1 and ascii labels mean windows-1252 (so 0x80 is the euro sign).
        (b"<p>\x80 5</p>", "text/html; charset=ISO-8859-1", "cp1252", "header", "<p>€ 5</p>"),
        (b"<p>\x80 5</p>", "text/html; charset=us-ascii", "cp1252", "header", "<p>€ 5</p>"),
        # A byte-order mark beats the header.
        (codecs.BOM_UTF8 + CAFE.encode(), "text/html; charset=iso-8859-1", "utf-8", "bom", CAFE),
        (codecs.BOM_UTF16_LE + CAFE.encode("utf-16-le"), None, "utf-16-le", "bom", CAFE),
        (codecs.BOM_UTF16_BE + CAFE.encode("utf-16-be"), "text/html", "utf-16-be", "bom", CAFE),
        # The header beats the document's <meta>.
        (
            b'<meta charset="koi8-r"><p>caf\xe9</p>',
            "text/html; charset=windows-1252",
            "cp1252",
            "header",
            '<meta charset="koi8-r"><p>café</p>',
        ),
        # No label in the header: <meta charset>, then http-equiv.
        (
            '<meta charset="windows-1251"><p>Привет</p>'.encode("cp1251"),
            "text/html",
            "cp1251",
            "meta",
            '<meta charset="windows-1251"><p>Привет</p>',
        ),
        (
            "<META HTTP-EQUIV='Content-Type' CONTENT='text/html; charset=Shift_JIS'>日本".encode(
                "cp932"
            ),
            None,
            "cp932",
            "meta",
            "<META HTTP-EQUIV='Content-Type' CONTENT='text/html; charset=Shift_JIS'>日本",
        ),
        # The XML declaration, for XML.
        (
            b'<?xml version="1.0" encoding="ISO-8859-2"?><a>\xb1</a>',
            "application/xml",
            "iso8859-2",
            "xml",
            '<?xml version="1.0" encoding="ISO-8859-2"?><a>ą</a>',
        ),
        # Nothing declared, valid UTF-8 (ASCII is).
        (CAFE.encode(), "text/html", "utf-8", "utf-8", CAFE),
        (b"plain ascii", None, "utf-8", "utf-8", "plain ascii"),
        (b"", None, "utf-8", "utf-8", ""),
    ],
)
def test_where_the_encoding_comes_from(
    body: bytes, content_type: str | None, encoding: str, source: str, text: str
) -> None:
    decoded = decode(body, content_type)
    assert (decoded.encoding, decoded.source, decoded.text) == (encoding, source, text)


def test_a_meta_inside_a_comment_or_past_the_prescan_is_not_read() -> None:
    commented = b'<!-- <meta charset="koi8-r"> --><p>caf\xc3\xa9</p>'
    assert decode(commented, "text/html").source == "utf-8"
    late = b"<p>" + b" " * PRESCAN_BYTES + b'<meta charset="koi8-r">caf\xc3\xa9'
    assert decode(late, "text/html").encoding == "utf-8"


def test_a_meta_that_says_utf16_means_utf8() -> None:
    # Whoever could read the <meta> as ASCII is not reading UTF-16.
    decoded = decode('<meta charset="utf-16"><p>café</p>'.encode(), "text/html")
    assert (decoded.encoding, decoded.text) == ("utf-8", '<meta charset="utf-16"><p>café</p>')


@pytest.mark.parametrize(
    "label",
    [
        "utf-7",
        "rot13",
        "base64",
        "no-such-charset",
        "",
        "zlib",
        "unicode-escape",
        "raw_unicode_escape",
        "idna",
        "punycode",
    ],
)
def test_unusable_labels_are_passed_over(label: str) -> None:
    assert codec_for(label) is None
    body = '<meta charset="windows-1251"><p>Привет</p>'.encode("cp1251")
    decoded = decode(body, f"text/html; charset={label}")
    assert (decoded.encoding, decoded.source) == ("cp1251", "meta")


def test_mislabeled_pages_are_decoded_as_labeled_with_replacements() -> None:
    # Says UTF-8, is windows-1252: the label is obeyed (as browsers do), bad bytes replaced.
    decoded = decode("<p>café</p>".encode("cp1252"), "text/html; charset=utf-8")
    assert (decoded.encoding, decoded.text) == ("utf-8", "<p>caf\ufffd</p>")


def test_undeclared_non_utf8_text_is_detected() -> None:
    text = "<p>" + "Съешь же ещё этих мягких французских булок, да выпей чаю. " * 20 + "</p>"
    decoded = decode(text.encode("cp1251"), "text/html")
    assert decoded.source == "detected"
    assert decoded.text == text


def test_undecidable_bytes_fall_back_or_are_detected_but_always_decode() -> None:
    body = bytes(range(128, 256)) * 3
    decoded = decode(body, None)
    assert decoded.source in ("detected", "fallback")
    assert len(decoded.text) > 0


def test_a_utf8_character_cut_at_the_end_is_still_utf8() -> None:
    decoded = decode("café €".encode()[:-1], None)
    assert (decoded.encoding, decoded.source) == ("utf-8", "utf-8")
    assert decoded.text == "café \ufffd"


def test_sniffing_without_detection_is_cheap_and_says_utf8() -> None:
    body = "<p>Привет</p>".encode("cp1251")
    assert sniff_encoding(body, "text/html", detect=False) == ("utf-8", "utf-8", 0)
    assert sniff_encoding(codecs.BOM_UTF8 + body, None, detect=False) == ("utf-8", "bom", 3)


def test_media_type_reads_the_charset_parameter() -> None:
    assert media_type("Text/HTML; Charset = 'Shift_JIS' ") == ("text/html", "Shift_JIS")
    assert media_type("application/json") == ("application/json", None)
    assert media_type("text/html; charset=") == ("text/html", None)


@settings(max_examples=300, deadline=None)
@given(
    body=st.binary(max_size=2048),
    content_type=st.one_of(
        st.none(),
        st.sampled_from(
            [
                "text/html",
                "text/html; charset=utf-8",
                "text/html; charset=utf-16",
                "text/html; charset=shift_jis",
                "text/html; charset=bogus",
                "application/xml",
            ]
        ),
        st.text(max_size=40),
    ),
)
def test_any_bytes_decode_to_text_without_raising(body: bytes, content_type: str | None) -> None:
    decoded = decode(body, content_type)
    assert isinstance(decoded.text, str)
    assert codec_for(decoded.encoding) == decoded.encoding
