"""Reading and changing one XCAP document: the validation pipeline and RFC 4825 §8's rules.

Pure functions of bytes in, bytes out; no database, no HTTP. A document PUT is stored as
sent. Writes through a node selector edit the parsed tree and serialize it again, keeping
the XML declaration, whitespace, comments and namespace declarations; a new element is
spliced in as the client's own bytes, so GET returns exactly what was PUT (§8.2.3 also
forbids the server to drop the element's redundant namespace declarations, which a tree
move in lxml would do).
"""

from __future__ import annotations

import re
import secrets
from io import BytesIO
from xml.sax.saxutils import escape

from lxml import etree

from sipws import xmlsafe

from .errors import (
    CannotDelete,
    CannotInsert,
    ConstraintFailure,
    NotFound,
    NotUtf8,
    NotWellFormed,
    NotXmlAttValue,
    NotXmlFrag,
    UnsupportedMediaType,
)
from .selectors import (
    AttributeSelector,
    CannotPlace,
    NamespaceSelector,
    NodeSelector,
    SelectorError,
    apply_step,
    decode_att_value,
    document_index,
    find_element,
    locate,
    place,
)

ELEMENT_MIME = "application/xcap-el+xml"
ATTRIBUTE_MIME = "application/xcap-att+xml"
NAMESPACE_MIME = "application/xcap-ns+xml"

_PROLOG = re.compile(rb"\A(?:\xef\xbb\xbf)?(<\?xml\s[^>]*\?>[ \t\r\n]*)")
_START_TAG_NAMESPACES = re.compile(rb'\A<([^\s/>]+)((?:\s+xmlns(?::[^\s=]+)?="[^"]*")*)')
_XML_SPACE = b" \t\r\n"
_ITERPARSE_SAFETY = dict(resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False)


def _is_utf8(data: bytes) -> bool:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def parse_document(data: bytes, *, max_bytes: int):
    """Parse a document body: well-formed first, then UTF-8 (RFC 4825 §8.2.2)."""
    try:
        root = xmlsafe.parse(data, max_bytes=max_bytes)
    except xmlsafe.XmlError as exc:
        if "DTD" in exc.reason:
            # Well-formed, maybe, but never expanded nor fetched: a server constraint.
            raise ConstraintFailure("document type declarations (DTDs) are not allowed") from None
        if not _is_utf8(data):
            raise NotUtf8() from None
        raise NotWellFormed(exc.detail or exc.reason) from None
    encoding = (root.getroottree().docinfo.encoding or "UTF-8").upper()
    if encoding not in ("UTF-8", "UTF8") or not _is_utf8(data):
        raise NotUtf8(f"document is encoded as {encoding}, XCAP requires UTF-8")
    return root


def _parse_stored(data: bytes):
    # Stored documents passed the pipeline when written; parse them the same hardened way.
    return xmlsafe.parse(data, max_bytes=len(data) + 1)


def serialize(root, original: bytes) -> bytes:
    """The document again, with the XML declaration (and what follows it) of `original`."""
    prolog = _PROLOG.match(original)
    return (prolog.group(1) if prolog else b"") + etree.tostring(
        root.getroottree(), encoding="UTF-8"
    )


# Reading (§8.3) -------------------------------------------------------------------------


def _local_namespaces(data: bytes, index: int) -> list[tuple[str, str]]:
    """The namespace declarations written on the `index`-th element of the document."""
    pending: list[tuple[str, str]] = []
    count = 0
    for event, item in etree.iterparse(
        BytesIO(data), events=("start-ns", "start"), **_ITERPARSE_SAFETY
    ):
        if event == "start-ns":
            pending.append(item)
            continue
        if count == index:
            return pending
        pending = []
        count += 1
    return []


def _xmlns(declarations) -> bytes:
    parts = []
    for prefix, uri in declarations:
        name = f"xmlns:{prefix}" if prefix else "xmlns"
        parts.append(f' {name}="{escape(uri, {chr(34): "&quot;"})}"')
    return "".join(parts).encode("utf-8")


def element_fragment(data: bytes, root, element) -> bytes:
    """The element as an XML fragment body, with only the namespace declarations written on
    it: §8.3 forbids adding those of its ancestors."""
    text = etree.tostring(element, encoding="UTF-8", with_tail=False)
    declared = _local_namespaces(data, document_index(root, element))
    match = _START_TAG_NAMESPACES.match(text)
    return b"<" + match.group(1) + _xmlns(declared) + text[match.end() :]


def attribute_value(value: str) -> bytes:
    """An AttValue, quoted: whitespace characters as references so they survive reading."""
    entities = {'"': "&quot;", "\t": "&#9;", "\n": "&#10;", "\r": "&#13;"}
    return f'"{escape(value, entities)}"'.encode()


def namespace_bindings(element) -> bytes:
    """The namespaces in scope for an element, in the format of §10."""
    qname = etree.QName(element)
    tag = f"{element.prefix}:{qname.localname}" if element.prefix else qname.localname
    declarations = sorted(element.nsmap.items(), key=lambda item: item[0] or "")
    return f"<{tag}".encode() + _xmlns(declarations) + b"/>"


def read(data: bytes, selector: NodeSelector | None, mime_type: str) -> tuple[bytes, str]:
    """GET: the bytes and content type for a document, element, attribute or bindings."""
    if selector is None:
        return data, mime_type
    root = _parse_stored(data)
    element = find_element(root, selector.steps)
    if element is None:
        raise NotFound("the node selector selects no element")
    terminal = selector.terminal
    if terminal is None:
        return element_fragment(data, root, element), ELEMENT_MIME
    if isinstance(terminal, NamespaceSelector):
        return namespace_bindings(element), NAMESPACE_MIME
    value = element.get(terminal.key)
    if value is None:
        raise NotFound("the element has no such attribute")
    return attribute_value(value), ATTRIBUTE_MIME


# Writing (§8.2) -------------------------------------------------------------------------


class ParentMissing(Exception):
    """The element to insert into does not exist; `matched` steps did select one each."""

    def __init__(self, matched: int) -> None:
        super().__init__(matched)
        self.matched = matched


def _media_type(content_type: str | None) -> str:
    return (content_type or "").split(";", 1)[0].strip().lower()


def require_media_type(content_type: str | None, expected: str) -> None:
    """415 unless the request's Content-Type is `expected` (parameters aside)."""
    if _media_type(content_type) != expected:
        raise UnsupportedMediaType(f"the body must be {expected}")


def parse_fragment(body: bytes, namespaces: dict) -> bytes:
    """Check that `body` is one element, read in the namespace context of its new parent.

    Returns the element's bytes without the whitespace around them.
    """
    if not _is_utf8(body):
        raise NotUtf8()
    raw = body.removeprefix(b"\xef\xbb\xbf").strip(_XML_SPACE)
    if not raw.startswith(b"<") or raw[1:2] in (b"?", b"!"):
        raise NotXmlFrag("the body must be a single XML element")
    wrapper = f"w{secrets.token_hex(4)}"
    context = _xmlns((prefix or "", uri) for prefix, uri in namespaces.items())
    wrapped = (
        f'<{wrapper}:fragment xmlns:{wrapper}="urn:xcapapi:fragment"'.encode()
        + context
        + b">"
        + raw
        + f"</{wrapper}:fragment>".encode()
    )
    try:
        holder = xmlsafe.parse(wrapped, max_bytes=len(wrapped) + 1)
    except xmlsafe.XmlError as exc:
        raise NotXmlFrag(exc.detail or exc.reason) from None
    children = list(holder)
    if len(children) != 1 or not isinstance(children[0].tag, str) or children[0].tail:
        raise NotXmlFrag("the body must be exactly one XML element")
    return raw


def _find_parent(root, steps):
    """The element the steps select; ParentMissing if they select none (or several)."""
    matched, parent = locate(root, steps)
    if matched < len(steps):
        raise ParentMissing(matched)
    return parent


def put_element(
    data: bytes, selector: NodeSelector, body: bytes, content_type: str | None
) -> tuple[bytes, bool]:
    """Create or replace the selected element (§8.2.1-§8.2.4).

    Returns the new document and whether the element was created. The result still needs
    the usage's validation.
    """
    root = _parse_stored(data)
    parent_steps, target = selector.steps[:-1], selector.steps[-1]
    parent = _find_parent(root, parent_steps)
    require_media_type(content_type, ELEMENT_MIME)
    # A new root element brings its own declarations; any other is read where it goes.
    raw = parse_fragment(body, dict(parent.nsmap) if parent is not None else {})
    existing = apply_step(root, parent, target)
    if len(existing) > 1:
        raise CannotInsert("the node selector selects more than one element")
    token = f"xcap-{secrets.token_hex(8)}"
    marker = etree.ProcessingInstruction(token, "x")
    created = not existing
    if existing and existing[0] is root:
        # A new root element is a new document, save for the XML declaration.
        prolog = _PROLOG.match(data)
        new = (prolog.group(1) if prolog else b"") + raw
        index = 0
    else:
        if existing:
            old = existing[0]
            marker.tail = old.tail
            old.getparent().replace(old, marker)
        elif parent is None:
            raise CannotInsert("a document has exactly one root element")
        else:
            try:
                place(parent, target, marker)
            except CannotPlace as exc:
                raise CannotInsert(str(exc)) from None
        index = document_index(root, marker)
        text = serialize(root, data)
        placeholder = f"<?{token} x?>".encode()
        if text.count(placeholder) != 1:
            raise CannotInsert("could not place the element")
        new = text.replace(placeholder, raw)
    try:
        new_root = _parse_stored(new)
    except xmlsafe.XmlError:
        raise NotXmlFrag("the element does not fit where it would go") from None
    selected = find_element(new_root, selector.steps)
    if selected is None or document_index(new_root, selected) != index:
        raise CannotInsert("the node selector would not select the new element after the PUT")
    return new, created


def parse_att_value(body: bytes) -> str:
    if not _is_utf8(body):
        raise NotUtf8()
    try:
        return decode_att_value(body.decode("utf-8").strip(" \t\r\n"))
    except SelectorError as exc:
        raise NotXmlAttValue(str(exc)) from None


def put_attribute(
    data: bytes, selector: NodeSelector, body: bytes, content_type: str | None
) -> tuple[bytes, bool]:
    """Create or replace the selected attribute (§8.2.3, §8.2.4)."""
    terminal = selector.terminal
    assert isinstance(terminal, AttributeSelector)
    root = _parse_stored(data)
    element = _find_parent(root, selector.steps)
    require_media_type(content_type, ATTRIBUTE_MIME)
    value = parse_att_value(body)
    created = element.get(terminal.key) is None
    element.set(terminal.key, value)
    new = serialize(root, data)
    new_root = _parse_stored(new)
    selected = find_element(new_root, selector.steps)
    if selected is None or selected.get(terminal.key) != value:
        raise CannotInsert("the node selector would not select the attribute after the PUT")
    return new, created


def delete_node(data: bytes, selector: NodeSelector) -> bytes:
    """Remove the selected element or attribute (§8.4), keeping the whitespace around it."""
    root = _parse_stored(data)
    element = find_element(root, selector.steps)
    if element is None:
        raise NotFound("the node selector selects no element")
    terminal = selector.terminal
    if isinstance(terminal, AttributeSelector):
        if element.get(terminal.key) is None:
            raise NotFound("the element has no such attribute")
        del element.attrib[terminal.key]
        again = find_element(root, selector.steps)
        if again is not None and again.get(terminal.key) is not None:
            raise CannotDelete("the node selector would still select an attribute")
        return serialize(root, data)
    if element is root:
        raise CannotDelete("the root element goes only with its document: DELETE the document")
    parent = element.getparent()
    if element.tail:
        previous = element.getprevious()
        if previous is not None:
            previous.tail = (previous.tail or "") + element.tail
        else:
            parent.text = (parent.text or "") + element.tail
    parent.remove(element)
    if find_element(root, selector.steps) is not None:
        raise CannotDelete("after the DELETE the node selector would select another element")
    return serialize(root, data)
