"""The hardened XML parser: no DTDs, no entities, no network, no files, bounded size."""

import time

import pytest

from sipws.xmlsafe import XmlError, parse

LIMIT = 64 * 1024

BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE bomb [
  <!ENTITY a "ha">
  <!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">
  <!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;">
  <!ENTITY d "&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;">
  <!ENTITY e "&d;&d;&d;&d;&d;&d;&d;&d;&d;&d;">
  <!ENTITY f "&e;&e;&e;&e;&e;&e;&e;&e;&e;&e;">
  <!ENTITY g "&f;&f;&f;&f;&f;&f;&f;&f;&f;&f;">
  <!ENTITY h "&g;&g;&g;&g;&g;&g;&g;&g;&g;&g;">
  <!ENTITY i "&h;&h;&h;&h;&h;&h;&h;&h;&h;&h;">
]>
<bomb>&i;</bomb>
"""

EXTERNAL_ENTITY = b"""<?xml version="1.0"?>
<!DOCTYPE leak [ <!ENTITY secret SYSTEM "file:///etc/passwd"> ]>
<leak>&secret;</leak>
"""


def test_parses_a_plain_document():
    root = parse(b'<?xml version="1.0"?><a xmlns="urn:x"><b>text</b></a>', max_bytes=LIMIT)
    assert root.tag == "{urn:x}a"
    assert root[0].text == "text"


def test_billion_laughs_is_refused_quickly():
    started = time.monotonic()
    with pytest.raises(XmlError) as caught:
        parse(BILLION_LAUGHS, max_bytes=LIMIT)
    assert "DTD" in caught.value.reason
    assert time.monotonic() - started < 1


def test_billion_laughs_in_utf16_is_refused():
    with pytest.raises(XmlError) as caught:
        parse(BILLION_LAUGHS.decode().encode("utf-16"), max_bytes=LIMIT)
    assert "DTD" in caught.value.reason


def test_external_entity_is_refused_and_never_read():
    with pytest.raises(XmlError) as caught:
        parse(EXTERNAL_ENTITY, max_bytes=LIMIT)
    assert "root:" not in str(caught.value)
    assert "root:" not in caught.value.detail


def test_doctype_without_entities_is_refused():
    with pytest.raises(XmlError):
        parse(b'<!DOCTYPE a SYSTEM "http://example.com/a.dtd"><a/>', max_bytes=LIMIT)


def test_undeclared_entity_reference_is_not_well_formed():
    with pytest.raises(XmlError) as caught:
        parse(b"<a>&undeclared;</a>", max_bytes=LIMIT)
    assert caught.value.reason == "XML not well-formed"


def test_oversize_is_refused_before_parsing():
    body = b"<a>" + b"x" * 100 + b"</a>"
    with pytest.raises(XmlError) as caught:
        parse(body, max_bytes=50)
    assert "too large" in caught.value.reason
    assert parse(body, max_bytes=len(body)).text == "x" * 100


@pytest.mark.parametrize(
    "body",
    [b"<a><b></a>", b"<a>", b"not xml at all", b"<a/><b/>", b"", b"   "],
)
def test_not_well_formed_is_refused(body):
    with pytest.raises(XmlError):
        parse(body, max_bytes=LIMIT)


def test_deep_nesting_is_refused():
    depth = 100_000
    with pytest.raises(XmlError):
        parse(b"<a>" * depth + b"</a>" * depth, max_bytes=10 * depth)


def test_declared_encoding_is_honoured():
    latin1 = '<?xml version="1.0" encoding="ISO-8859-1"?><a>café</a>'.encode("latin-1")
    assert parse(latin1, max_bytes=LIMIT).text == "café"
    utf16 = '<?xml version="1.0" encoding="UTF-16"?><a>naïve ☎</a>'.encode("utf-16")
    assert parse(utf16, max_bytes=LIMIT).text == "naïve ☎"
    utf8 = "<a>ünïcødé</a>".encode()
    assert parse(utf8, max_bytes=LIMIT).text == "ünïcødé"


def test_unknown_encoding_is_refused():
    with pytest.raises(XmlError):
        parse(b'<?xml version="1.0" encoding="no-such-codec"?><a/>', max_bytes=LIMIT)


def test_text_is_not_accepted():
    with pytest.raises(TypeError):
        parse("<a/>", max_bytes=LIMIT)  # type: ignore[arg-type]


def test_dtd_is_refused_after_parsing_too(monkeypatch):
    # The byte scan is the first line; the parsed document's docinfo is the second.
    import sipws.xmlsafe

    monkeypatch.setattr(sipws.xmlsafe, "_FORBIDDEN", ())
    for body in (EXTERNAL_ENTITY, BILLION_LAUGHS, b"<!DOCTYPE a><a/>"):
        with pytest.raises(XmlError) as caught:
            parse(body, max_bytes=LIMIT)
        assert "root:" not in caught.value.detail
