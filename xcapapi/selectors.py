"""Node selectors (RFC 4825 §6.3, §6.4): parse them, walk them, and place a PUT's new element.

A node selector is a chain of steps from the document's root element, each choosing exactly
one element by expanded name (or `*`), position and one attribute test, optionally ending in
an attribute selector `@name` or the namespace selector `namespace::*`. Unprefixed element
names are in the application usage's default document namespace; prefixes are bound by the
`xmlns()` parts of the URI's query. Steps are walked by hand rather than handed to XPath:
XPath cannot tell where a PUT must insert an element (§8.2.3), and its prefix rules differ.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import quote

from lxml import etree

XML_NAMESPACE = "http://www.w3.org/XML/1998/namespace"


class SelectorError(ValueError):
    """The selector or its namespace bindings do not parse (answered with 400)."""


class CannotPlace(ValueError):
    """A positional insertion asks for more preceding siblings than exist (§8.2.3)."""


_NCNAME = r"[^\W\d][\w.\-\u00b7]*"
_QNAME = rf"(?:{_NCNAME}:)?{_NCNAME}"
_STEP = re.compile(
    rf"(?P<name>\*|{_QNAME})"
    r"(?:\[(?P<position>[0-9]+)\])?"
    rf"(?:\[@(?P<attr>{_QNAME})\s*=\s*(?P<value>\"[^\"]*\"|'[^']*')\])?"
)
_ATTRIBUTE = re.compile(rf"@(?P<attr>{_QNAME})")
_REFERENCE = re.compile(r"&(?:#([0-9]+)|#x([0-9A-Fa-f]+)|(quot|apos|amp|lt|gt));")
_ENTITIES = {"quot": '"', "apos": "'", "amp": "&", "lt": "<", "gt": ">"}
_POINTER_PART = re.compile(rf"({_QNAME})\(")


def decode_att_value(quoted: str) -> str:
    """The value of an XML AttValue (quotes included); SelectorError if it is not one."""
    if len(quoted) < 2 or quoted[0] not in "\"'" or quoted[-1] != quoted[0]:
        raise SelectorError("attribute value must be quoted")
    inner = quoted[1:-1]
    if quoted[0] in inner or "<" in inner:
        raise SelectorError("attribute value holds a bare quote or '<'")

    def replace(match: re.Match) -> str:
        decimal, hexadecimal, name = match.groups()
        if name:
            return _ENTITIES[name]
        code = int(decimal) if decimal else int(hexadecimal, 16)
        if not _is_xml_char(code):
            raise SelectorError("character reference to a character XML forbids")
        return chr(code)

    if "&" in _REFERENCE.sub("", inner):
        raise SelectorError("'&' that starts no character or entity reference")
    value = _REFERENCE.sub(replace, inner)
    if any(not _is_xml_char(ord(c)) for c in value):
        raise SelectorError("attribute value holds a character XML forbids")
    return value


def _is_xml_char(code: int) -> bool:
    return (
        code in (0x9, 0xA, 0xD)
        or 0x20 <= code <= 0xD7FF
        or 0xE000 <= code <= 0xFFFD
        or 0x10000 <= code <= 0x10FFFF
    )


# The parsed form --------------------------------------------------------------------------


def clark(namespace: str | None, name: str) -> str:
    return f"{{{namespace}}}{name}" if namespace else name


@dataclass(frozen=True, slots=True)
class AttrTest:
    key: str  # Clark notation: {namespace}name, or name when in no namespace
    value: str


@dataclass(frozen=True, slots=True)
class Step:
    tag: str | None  # Clark notation; None for the wildcard
    position: int | None
    attr: AttrTest | None
    text: str

    def name_matches(self, element) -> bool:
        return self.tag is None or element.tag == self.tag


@dataclass(frozen=True, slots=True)
class AttributeSelector:
    key: str
    text: str


@dataclass(frozen=True, slots=True)
class NamespaceSelector:
    text: str = "namespace::*"


Terminal = AttributeSelector | NamespaceSelector


@dataclass(frozen=True, slots=True)
class NodeSelector:
    steps: tuple[Step, ...]
    terminal: Terminal | None
    text: str


# Parsing ------------------------------------------------------------------------------


def _split_steps(text: str) -> list[str]:
    """Split at the slashes outside predicates: attribute values may hold '/' themselves."""
    parts, current, depth, quote_char = [], [], 0, None
    for char in text:
        if quote_char:
            if char == quote_char:
                quote_char = None
        elif depth and char in "\"'":
            quote_char = char
        elif char == "[":
            depth += 1
        elif char == "]":
            depth -= 1
            if depth < 0:
                raise SelectorError("']' without '['")
        elif char == "/" and depth == 0:
            parts.append("".join(current))
            current = []
            continue
        current.append(char)
    if quote_char or depth:
        raise SelectorError("unterminated predicate or quoted value")
    parts.append("".join(current))
    return parts


def _expand(qname: str, bindings: Mapping[str, str], default: str | None) -> str:
    prefix, _, local = qname.rpartition(":")
    if not prefix:
        return clark(default, local)
    if prefix == "xml":
        return clark(XML_NAMESPACE, local)
    if prefix not in bindings:
        raise SelectorError(f"namespace prefix {prefix!r} is not bound by an xmlns() part")
    return clark(bindings[prefix], local)


def _attribute_key(qname: str, bindings: Mapping[str, str]) -> str:
    if qname == "xmlns" or qname.startswith("xmlns:"):
        raise SelectorError("namespace declarations are not attributes")
    # An unprefixed attribute name is in no namespace (§6.3).
    return _expand(qname, bindings, None)


def parse_selector(
    text: str, bindings: Mapping[str, str], default_namespace: str | None
) -> NodeSelector:
    """Parse a decoded node selector; SelectorError for bad syntax or an unbound prefix."""
    if not text:
        raise SelectorError("empty node selector")
    parts = _split_steps(text)
    terminal: Terminal | None = None
    last = parts[-1]
    if last == "namespace::*":
        terminal = NamespaceSelector()
    elif last.startswith("@"):
        match = _ATTRIBUTE.fullmatch(last)
        if match is None:
            raise SelectorError(f"bad attribute selector {last!r}")
        terminal = AttributeSelector(_attribute_key(match["attr"], bindings), last)
    if terminal is not None:
        parts = parts[:-1]
    if not parts:
        raise SelectorError("a node selector starts with an element step")
    steps = []
    for part in parts:
        match = _STEP.fullmatch(part)
        if match is None:
            raise SelectorError(f"bad step {part!r}")
        name = match["name"]
        tag = None if name == "*" else _expand(name, bindings, default_namespace)
        attr = None
        if match["attr"]:
            attr = AttrTest(
                _attribute_key(match["attr"], bindings), decode_att_value(match["value"])
            )
        position = int(match["position"]) if match["position"] is not None else None
        steps.append(Step(tag, position, attr, part))
    return NodeSelector(tuple(steps), terminal, text)


def parse_xmlns(query: str) -> dict[str, str]:
    """Namespace bindings from a decoded query component (XPointer framework, §6.4).

    Parts of other schemes are ignored, as RFC 4825 asks. Circumflex escapes (`^(`, `^)`,
    `^^`) are undone. Quotes around the namespace name, which some clients add, are dropped.
    """
    bindings: dict[str, str] = {}
    i, end = 0, len(query)
    while i < end:
        if query[i].isspace():
            i += 1
            continue
        match = _POINTER_PART.match(query, i)
        if match is None:
            raise SelectorError("query is not an XPointer of scheme(data) parts")
        scheme = match.group(1)
        i = match.end()
        data, depth = [], 1
        while True:
            if i >= end:
                raise SelectorError(f"unterminated {scheme}() part")
            char = query[i]
            if char == "^":
                if i + 1 >= end or query[i + 1] not in "()^":
                    raise SelectorError("bad circumflex escape")
                data.append(query[i + 1])
                i += 2
                continue
            if char == "(":
                depth += 1
            elif char == ")":
                depth -= 1
                if depth == 0:
                    i += 1
                    break
            data.append(char)
            i += 1
        if scheme != "xmlns":
            continue
        prefix, equals, namespace = "".join(data).partition("=")
        prefix, namespace = prefix.strip(), namespace.strip()
        if len(namespace) >= 2 and namespace[0] == namespace[-1] and namespace[0] in "\"'":
            namespace = namespace[1:-1]
        if not equals or not re.fullmatch(_NCNAME, prefix) or not namespace:
            raise SelectorError("xmlns() part is not prefix=namespace")
        bindings[prefix] = namespace
    return bindings


# Walking --------------------------------------------------------------------------------


def element_children(element) -> list:
    """The element's child elements: comments, text and processing instructions are skipped."""
    return [child for child in element if isinstance(child.tag, str)]


def _candidates(root, parent) -> list:
    # The document node's only element child is the root element.
    return [root] if parent is None else element_children(parent)


def apply_step(root, parent, step: Step) -> list:
    """The elements `step` selects among the children of `parent` (None: the document)."""
    found = [el for el in _candidates(root, parent) if step.name_matches(el)]
    if step.position is not None:
        found = found[step.position - 1 : step.position] if step.position >= 1 else []
    if step.attr is not None:
        found = [el for el in found if el.get(step.attr.key) == step.attr.value]
    return found


def locate(root, steps: tuple[Step, ...]) -> tuple[int, object]:
    """Walk as far as each step selects exactly one element.

    Returns how many steps succeeded and the last element reached (None if not even the
    first step did).
    """
    current = None
    for count, step in enumerate(steps):
        found = apply_step(root, current, step)
        if len(found) != 1:
            return count, current
        current = found[0]
    return len(steps), current


def find_element(root, steps: tuple[Step, ...]):
    """The one element the steps select, or None for a no-match or an invalid selector."""
    count, element = locate(root, steps)
    return element if count == len(steps) else None


# Placing a new element (RFC 4825 §8.2.3) --------------------------------------------------


def _place_after(sibling, node) -> None:
    # After the sibling's end tag, ahead of the text that followed it.
    node.tail, sibling.tail = sibling.tail, None
    sibling.addnext(node)


def place(parent, step: Step, node) -> None:
    """Put `node` where a new element selected by `step` goes among `parent`'s children.

    Elements of one expanded name stay together: an unpositioned element goes right after
    the last of its name ("earliest last"), or at the very end when it has none; `name[n]`
    goes right after the (n-1)th of its name, `*[n]` after the (n-1)th element.
    """
    elements = element_children(parent)
    same = [el for el in elements if step.name_matches(el)]
    n = step.position
    if n is None or (n == 1 and not same):
        if step.tag is not None and same:
            _place_after(same[-1], node)
        else:
            parent.append(node)
    elif n == 1:
        same[0].addprevious(node)
    elif n - 1 <= len(same):
        _place_after(same[n - 2], node)
    else:
        raise CannotPlace(f"position {n} needs {n - 1} elements before it, there are {len(same)}")


def document_index(root, node) -> int:
    """How many elements precede `node` in document order (its index among elements)."""
    count = 0
    for item in root.iter():
        if item is node:
            return count
        if isinstance(item.tag, str):
            count += 1
    raise ValueError("node is not in this document")


# Building selectors back (for <ancestor> and uniqueness reports) -------------------------

_PCHAR_SAFE = "!$&'()*+,;=:@-._~"


def element_path(element, default_namespace: str | None) -> tuple[str, dict[str, str]]:
    """A node selector that selects exactly `element`, and the prefixes it uses."""
    chain = []
    node = element
    while node is not None:
        chain.append(node)
        node = node.getparent()
    chain.reverse()
    bindings: dict[str, str] = {}
    steps = []
    for node in chain:
        parent = node.getparent()
        siblings = [node] if parent is None else element_children(parent)
        qname = etree.QName(node)
        namespace = qname.namespace
        if namespace == default_namespace or (namespace is None and not default_namespace):
            name = qname.localname
        elif namespace is None:
            # Unprefixed names mean the default document namespace: count among all.
            steps.append(f"*[{siblings.index(node) + 1}]")
            continue
        else:
            prefix = next((p for p, uri in bindings.items() if uri == namespace), None)
            if prefix is None:
                prefix = node.prefix if node.prefix and node.prefix not in bindings else None
                prefix = prefix or f"n{len(bindings) + 1}"
                bindings[prefix] = namespace
            name = f"{prefix}:{qname.localname}"
        same = [el for el in siblings if el.tag == node.tag]
        steps.append(name if len(same) == 1 else f"{name}[{same.index(node) + 1}]")
    return "/".join(steps), bindings


def encode_selector(text: str, bindings: Mapping[str, str] | None = None) -> str:
    """Percent-encode a node selector for a URI, with an xmlns() query when prefixes are used."""
    encoded = "/".join(quote(part, safe=_PCHAR_SAFE) for part in _split_steps(text))
    if bindings:
        query = "".join(f"xmlns({prefix}={uri})" for prefix, uri in bindings.items())
        encoded += "?" + quote(query, safe=_PCHAR_SAFE + "/?")
    return encoded
