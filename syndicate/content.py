"""The parser's second pass: an entry and its body HTML → the Article that feeds carry.

Parsing HTML is most of the cost of reading an article, so it is done only for the
articles that reach a feed; the first pass (parse.py) reads every file without it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, tzinfo

import lxml.etree
import lxml.html
from lxml.etree import _Element as Element

from syndicate.clean import absolute, image_mime, normalize_url, plain, sanitize
from syndicate.model import Article, Entry, Image
from syndicate.parse import DEFAULT_ENCODINGS, read_entry

_LAZY_SRC = ("data-src", "data-original", "data-lazy-src", "data-url")
_ORIGINAL_LANGUAGE = (("英文", "en"), ("English", "en"), ("中文", "zh"), ("日文", "ja"))


@dataclass(frozen=True, slots=True)
class Parsed:
    """A whole article and what the first pass found about its file."""

    article: Article
    entry: Entry

    @property
    def warnings(self) -> tuple[str, ...]:
        return self.entry.warnings


def parse_article(data: bytes, path: str, *, zone: tzinfo,
                  encodings: Sequence[str] = DEFAULT_ENCODINGS, now: datetime) -> Parsed:
    """Both passes over one file. Raises ArticleError (with the reason) for a file that
    gives no article."""
    entry, body = read_entry(data, path, zone=zone, encodings=encodings, now=now)
    return Parsed(article_from(entry, body), entry)


def article_from(entry: Entry, body: str, *, without_images: bool = True) -> Article:
    """The second pass: parse the body HTML into what feeds carry. Never fails; HTML that
    is not well formed is repaired by the parser. With without_images=False the body
    without its images (for `images: enclosure` channels only) is not made: sanitizing
    it is a seventh of the second pass."""
    content = _Content(_fragment(body), entry.url, without_images)
    return Article(
        url=entry.url,
        title=entry.title,
        published=entry.published,
        updated=entry.updated or entry.captured,
        section=entry.section,
        authors=entry.authors,
        summary=content.summary,
        body_html=content.body_html,
        body_html_without_images=content.body_html_without_images,
        images=content.images,
        source_time=entry.source_time,
        original_url=content.original_url,
        original_lang=content.original_lang,
        path=entry.path,
        content_hash=entry.content_hash,
    )


# lxml.html's own parser gives HtmlElement proxies, which it picks by calling a Python
# function for every element the code touches (about 50 an article: 8% of the second
# pass). The same libxml2 parser without that lookup gives plain elements; the few
# HtmlElement methods used here are _text and _drop below. New elements come from the
# parser too (makeelement), so that they belong to an HTML document as the parsed ones
# do: libxml2 serializes some text differently in an XML one.
_PARSER = lxml.etree.HTMLParser()
_STRING_VALUE = lxml.etree.XPath("string()", smart_strings=False)


def _text(element: Element) -> str:
    """The element's text and its descendants', as HtmlElement.text_content gives it."""
    return str(_STRING_VALUE(element))


def _fragment(body: str) -> Element:
    """lxml.html.fragment_fromstring(body, create_parent="div"), as plain elements; an
    empty <div> for a body with no HTML to take."""
    if not body:
        return _PARSER.makeelement("div")
    try:
        elements = lxml.html.fragments_fromstring(body, parser=_PARSER)
        root = _PARSER.makeelement("div")
        if elements and isinstance(elements[0], str):
            root.text = elements.pop(0)
    except (lxml.etree.ParserError, ValueError, AssertionError, IndexError):
        # Nothing to parse, or text lxml refuses; or a "fragment" that is the start of a
        # whole page with no <body> (a scraper that saved the <head>), which lxml.html
        # rejects with an assert (an IndexError under python -O).
        return _PARSER.makeelement("div")
    root.extend(elements)
    return root


class _Content:
    """The parts of the HTML fragment a feed needs, made absolute and sanitized."""

    def __init__(self, root: Element, url: str, without_images: bool = True) -> None:
        _promote_lazy_images(root)
        _absolutize(root, url)
        section = next(root.iter("section"), None)
        footer = next(root.iter("footer"), None)
        lead_figure = next((f for f in root.iter("figure") if _outside(f, section)
                            and next(f.iter("img"), None) is not None), None)
        self.original_url, self.original_lang = _original(footer, url)
        body = section if section is not None else _leftover_body(root)

        images: dict[str, Image] = {}
        if lead_figure is not None:
            _add_image(images, next(lead_figure.iter("img")), lead=True)
        inline_blocks = _inline_image_blocks(body) if body is not None else []
        for _block, img in inline_blocks:
            _add_image(images, img, lead=False)
        self.images = tuple(images.values())
        self.summary = _summary(body)

        full = [_html(lead_figure)] if lead_figure is not None else []
        full.append(_inner_html(body))
        if footer is not None:
            full.append(_inner_html(footer))
        self.body_html = sanitize("".join(full))
        self.body_html_without_images: str | None = None
        if without_images:
            for block, _img in inline_blocks:
                _drop(block)
            without = [_inner_html(body)]
            if footer is not None:
                without.append(_inner_html(footer))
            self.body_html_without_images = sanitize("".join(without))


def _outside(element: Element, container: Element | None) -> bool:
    return container is None or all(a is not container for a in element.iterancestors())


def _leftover_body(root: Element) -> Element:
    """No <section>: the body is whatever is not address, time, lead figure or footer."""
    body = _PARSER.makeelement("div")
    for child in list(root):
        if child.tag not in ("address", "time", "figure", "footer"):
            body.append(child)
    return body


def _promote_lazy_images(root: Element) -> None:
    for img in root.iter("img"):
        src = (img.get("src") or "").strip()
        if src and not src.startswith("data:"):
            continue
        for attribute in _LAZY_SRC:
            lazy = (img.get(attribute) or "").strip()
            if lazy and not lazy.startswith("data:"):
                img.set("src", lazy)
                break


def _absolutize(root: Element, base: str) -> None:
    for element in list(root.iter("a", "img")):
        attribute = "href" if element.tag == "a" else "src"
        value = element.get(attribute)
        if value is None:
            if element.tag == "img":
                _drop(element)
            continue
        resolved = absolute(value, base)
        if resolved is None or (element.tag == "img" and resolved.startswith("mailto:")):
            if element.tag == "img":
                _drop(element)  # data: URIs and junk are not images a reader can fetch
            else:
                del element.attrib[attribute]
        else:
            element.set(attribute, resolved)


def _inline_image_blocks(body: Element) -> list[tuple[Element, Element]]:
    """Each body image with the block that presents it: a <figure>, or the scraped
    `<p><img><small>caption</small></p>` pattern (rewritten as a <figure>), or the
    <img> alone."""
    blocks: list[tuple[Element, Element]] = []
    for img in list(body.iter("img")):
        parent = img.getparent()
        if parent is not None and parent.tag == "figure":
            blocks.append((parent, img))
        elif parent is not None and parent.tag == "p" and not (parent.text or "").strip() and all(
            child is img or child.tag in ("small", "br") for child in parent
        ):
            parent.tag = "figure"
            for small in parent.findall("small"):
                small.tag = "figcaption"
                small.attrib.clear()
            blocks.append((parent, img))
        else:
            blocks.append((img, img))
    return blocks


def _add_image(images: dict[str, Image], img: Element, *, lead: bool) -> None:
    url = img.get("src")
    if not url or url in images:
        return
    figure = img.getparent()
    caption = credit = ""
    if figure is not None and figure.tag == "figure":
        caption_el = figure.find("figcaption")
        if caption_el is not None:
            cite = caption_el.find("cite")
            credit = plain(_text(cite)) if cite is not None else ""
            caption = plain(_text_without(caption_el, "cite"))
    images[url] = Image(
        url=url,
        mime=image_mime(url) or "image/jpeg",
        caption=caption or plain(img.get("alt") or ""),
        credit=credit,
        width=_int(img.get("width")),
        height=_int(img.get("height")),
        lead=lead,
    )


def _summary(body: Element | None) -> str:
    if body is None:
        return ""
    for paragraph in body.iter("p"):
        if next(paragraph.iter("img"), None) is not None:
            continue
        text = plain(_text(paragraph))
        if text:
            return text
    return plain(_text(body))[:500]


def _original(footer: Element | None, url: str) -> tuple[str | None, str | None]:
    if footer is None:
        return None, None
    for link in footer.iter("a"):
        href = link.get("href")
        text = _text(link)
        for marker, lang in _ORIGINAL_LANGUAGE:
            if href and marker in text and href.startswith("http") and normalize_url(href) != url:
                return href, lang
    return None, None


def _text_without(element: Element, skip_tag: str) -> str:
    parts = [element.text or ""]
    for child in element:
        if child.tag != skip_tag:
            parts.append(_text(child))
        parts.append(child.tail or "")
    return "".join(parts)


def _html(element: Element) -> str:
    # (lxml.html.tostring is this plus a search for <meta> tags on every call: sanitize
    # drops those anyway.)
    return lxml.etree.tostring(element, method="html", encoding="unicode", with_tail=False)


def _inner_html(element: Element | None) -> str:
    """The HTML of what `element` (a <section>, <footer> or <div>) holds: one
    serialization of the element without its attributes, less its start and end tags
    (tests/test_seed.py holds it to serializing each child). A call per child cost a
    fifth of the second pass."""
    if element is None:
        return ""
    attributes = dict(element.attrib.items())
    element.attrib.clear()
    try:
        whole = _html(element)
    finally:
        element.attrib.update(attributes)
    return whole[len(element.tag) + 2:-(len(element.tag) + 3)]


def _drop(element: Element) -> None:
    """Remove an element but keep its tail text in place (HtmlElement.drop_tree)."""
    parent = element.getparent()
    assert parent is not None
    if element.tail:
        previous = element.getprevious()
        if previous is None:
            parent.text = (parent.text or "") + element.tail
        else:
            previous.tail = (previous.tail or "") + element.tail
    parent.remove(element)


def _int(value: str | None) -> int | None:
    try:
        number = int((value or "").strip())
    except ValueError:
        return None
    return number if number > 0 else None


