"""One article file → Article. Knows the archive's file format; knows nothing of feeds.

The format (SPEC §1): a `<!--epoch-->` capture-time header, a `[title](url)` line, a
separator of 3+ '-' or '=', then one HTML fragment with <address>, <time>, a lead
<figure>, the <section> body and a <footer>. Scraped archives damage every part of
this, so each step either copes or raises ArticleError with a reason a user can act on.
"""

from __future__ import annotations

import codecs
import hashlib
import html
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo

import lxml.etree
import lxml.html
from lxml.html import HtmlElement

from syndicate.clean import (
    absolute,
    clean_title,
    image_mime,
    normalize_url,
    plain,
    sanitize,
    section_of,
    xml_safe,
)
from syndicate.errors import ArticleError
from syndicate.model import Article, Entry, Image

DEFAULT_ENCODINGS = ("utf-8", "gb18030", "big5")
EARLIEST = datetime(1990, 1, 1, tzinfo=UTC)  # no archive of web news starts before this
DISAGREEMENT = timedelta(days=1)  # header vs <time>: more than this usually means a wrong zone

_HEADER = re.compile(r"^\s*<!--\s*(.*?)\s*-->\s*$")
_TITLE_LINE = re.compile(r"^\s*\[(.*)\]\(\s*(\S+?)\s*\)\s*$")  # greedy: titles may hold ']'
_SEPARATOR = re.compile(r"^\s*(?:-{3,}|={3,})\s*$")
_CJK_DATE = re.compile(
    r"(\d{4})\s*年\s*(\d{1,2})\s*月\s*(\d{1,2})\s*日(?:\s*(\d{1,2})[:：时](\d{1,2})(?:[:：分](\d{1,2}))?)?"
)
_TIME_ELEMENT = re.compile(r"<time\b([^>]*)>(.*?)(?:</time\s*>|<)", re.IGNORECASE | re.DOTALL)
_ATTRIBUTE = re.compile(r"""([\w:-]+)\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s"'>]+))""")
_ANY_TAG = re.compile(r"<[^>]*>")
_AUTHOR_SPLIT = re.compile(r"\s*(?:,|，|、|;|；|\band\b|\bAND\b|和|与)\s*")
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


def read_entry(data: bytes, path: str, *, zone: tzinfo,
               encodings: Sequence[str] = DEFAULT_ENCODINGS, now: datetime) -> tuple[Entry, str]:
    """The first pass: decode, header, title line, dates and byline, found with regular
    expressions rather than an HTML parser, so that indexing a large archive is cheap.
    Returns the entry and the body HTML for `article_from`. Raises ArticleError."""
    warnings: list[str] = []
    text = decode(data, path, encodings)
    lines = xml_safe(text.lstrip("\ufeff")).replace("\r\n", "\n").replace("\r", "\n").split("\n")

    index = _skip_blank(lines, 0)
    header: str | None = None
    if index < len(lines) and (match := _HEADER.match(lines[index])):
        header = match.group(1)
        index = _skip_blank(lines, index + 1)
    title_match = _TITLE_LINE.match(lines[index]) if index < len(lines) else None
    if not title_match:
        if header is None:
            raise ArticleError(path, "not an article: no capture-time header and no [title](url) line")
        raise ArticleError(path, "no [title](url) line after the header")
    raw_url = title_match.group(2)
    url = absolute(raw_url, "https://invalid.invalid/") if "://" in raw_url else None
    if not url or url.startswith("mailto:"):
        raise ArticleError(path, f"the title line's link is not an absolute http(s) URL: {raw_url!r}")
    url = normalize_url(url)
    title = clean_title(title_match.group(1))
    if not title:
        raise ArticleError(path, "the [title](url) line has an empty title")
    body_start = index + 1
    for probe in range(index + 1, min(index + 4, len(lines))):
        if _SEPARATOR.match(lines[probe]):
            body_start = probe + 1
            break
    body = "\n".join(lines[body_start:]).strip()

    captured, recheck = _header_instant(header, now, warnings)
    source_time, date_only = _source_time(body, zone)
    if source_time is not None and not _plausible(source_time, now):
        warnings.append(f"<time> {source_time.isoformat()} is implausible; not used")
        recheck = recheck or source_time > now
        source_time = None
    disagreement = None
    if captured is not None:
        published = captured
        if source_time is not None:
            slack = DISAGREEMENT + (timedelta(days=1) if date_only else timedelta(0))
            gap = abs(captured - source_time)
            if gap > slack:
                disagreement = (
                    f"header capture time {captured.isoformat()} and <time> "
                    f"{source_time.isoformat()} disagree by {_days(gap)} (wrong time zone?)"
                )
    elif source_time is not None:
        published = source_time.astimezone(UTC)
    else:
        raise ArticleError(path, "no usable date: no capture-time header and no <time> value")

    authors = _authors(_element_text(body, "address"))
    entry = Entry(
        path=path, url=url, title=title, published=published, captured=captured or published,
        source_time=source_time, authors=authors, section=section_of(url),
        content_hash=_hash((title, *authors, body)), warnings=tuple(warnings),
        disagreement=disagreement, recheck=recheck,
    )
    return entry, body


def article_from(entry: Entry, body: str) -> Article:
    """The second pass: parse the body HTML into what feeds carry. Never fails; HTML that
    is not well formed is repaired by the parser."""
    content = _Content(_fragment(body), entry.url)
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


# --- bytes → text -------------------------------------------------------------------------

def decode(data: bytes, path: str, encodings: Sequence[str]) -> str:
    """Bytes → text. UTF-8 (with or without BOM) first, then the configured encodings in
    order, taking the first that decodes cleanly *and* reads as plausible text: Big5 bytes
    often decode as GB18030 without error (and the reverse), so a clean decode alone
    proves nothing. Detection (charset-normalizer) is the last resort; a file that still
    reads badly is skipped."""
    if not data.strip():
        raise ArticleError(path, "empty file")
    if data.startswith(codecs.BOM_UTF8):
        try:
            return data[3:].decode("utf-8")
        except UnicodeDecodeError:
            raise ArticleError(path, "encoding: starts with a UTF-8 BOM but is not valid UTF-8") from None
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        try:
            return data.decode("utf-16")
        except UnicodeDecodeError:
            raise ArticleError(path, "encoding: starts with a UTF-16 BOM but is not valid UTF-16") from None
    if b"\x00" in data[:8192] or _control_ratio(data[:8192]) > 0.05:
        raise ArticleError(path, "binary file, not text")
    tried: list[str] = []
    for encoding in dict.fromkeys(["utf-8", *encodings]):
        try:
            text = data.decode(encoding)
        except (UnicodeDecodeError, LookupError):
            continue
        tried.append(encoding)
        if codecs.lookup(encoding).name == "utf-8" or plausible_text(text):
            return text
    detected = _detect(data)
    if detected is not None:
        return detected
    names = ", ".join(dict.fromkeys(["utf-8", *encodings]))
    raise ArticleError(path, f"encoding: not readable as {names} or any detected encoding")


def plausible_text(text: str) -> bool:
    """Does this decoding read as Chinese (or as text without CJK at all)?

    Most characters of real Chinese text are among the commonest few thousand, which are
    exactly GB2312's level 1 (simplified) and Big5's level 1 (traditional). A wrong
    decoding lands on rare characters, symbol rows, kana or Hangul instead."""
    han = common = odd = 0
    for char in text:
        code = ord(char)
        if code < 0x80:
            continue
        if 0x4E00 <= code <= 0x9FFF:
            han += 1
            if _is_common_han(char):
                common += 1
            if han >= 3000:
                break
        elif (0xE000 <= code <= 0xF8FF or 0x80 <= code <= 0x9F or 0x3040 <= code <= 0x30FF
              or 0xAC00 <= code <= 0xD7AF or 0x0400 <= code <= 0x04FF or 0x2500 <= code <= 0x257F
              or 0x3400 <= code <= 0x4DBF or code == 0xFFFD):
            odd += 1
    if han == 0:
        return odd == 0
    return common / han >= 0.8 and odd / (han + odd) < 0.05


def _is_common_han(char: str) -> bool:
    try:
        gb = char.encode("gb2312")
        if 0xB0 <= gb[0] <= 0xD7:
            return True
    except UnicodeEncodeError:
        pass
    try:
        big5 = char.encode("big5")
        return 0xA4 <= big5[0] <= 0xC6
    except UnicodeEncodeError:
        return False


def _detect(data: bytes) -> str | None:
    from charset_normalizer import from_bytes  # only reached for files nothing else reads

    best = from_bytes(data).best()
    if best is None:
        return None
    text = str(best)
    if text.count("\ufffd") > max(3, len(text) // 1000) or not plausible_text(text):
        return None
    return text


_CONTROL_BYTES = bytes(b for b in range(0x20) if b not in (0x09, 0x0A, 0x0C, 0x0D, 0x1B))


def _control_ratio(sample: bytes) -> float:
    controls = len(sample) - len(sample.translate(None, _CONTROL_BYTES))
    return controls / max(1, len(sample))


def _skip_blank(lines: list[str], index: int) -> int:
    while index < len(lines) and not lines[index].strip():
        index += 1
    return index


# --- dates --------------------------------------------------------------------------------

def _header_instant(header: str | None, now: datetime,
                    warnings: list[str]) -> tuple[datetime | None, bool]:
    """The header's instant when usable, and whether it was refused for being in the future."""
    if header is None:
        return None, False
    if not header.isdigit() or not 9 <= len(header) <= 13:
        warnings.append(f"capture-time header <!--{header[:40]}--> is not an epoch in ms or s; "
                        "using <time>")
        return None, False
    # 13 digits are milliseconds and 10 are seconds; odd lengths are read by magnitude
    # (an epoch past 1e11 is milliseconds), then judged by the plausibility check below.
    seconds = int(header) / (1000 if int(header) >= 100_000_000_000 else 1)
    instant = datetime.fromtimestamp(seconds, UTC)
    if not _plausible(instant, now):
        warnings.append(f"capture-time header {instant.isoformat()} is implausible; using <time>")
        return None, instant > now
    return instant, False


def _plausible(instant: datetime, now: datetime) -> bool:
    return EARLIEST <= instant <= now + timedelta(days=1)


def _source_time(body: str, zone: tzinfo) -> tuple[datetime | None, bool]:
    """The <time> value as an aware datetime, and whether it is only a date."""
    match = _TIME_ELEMENT.search(body)
    if match is None:
        return None, False
    attributes = {name.lower(): value for name, *quoted in _ATTRIBUTE.findall(match.group(1))
                  for value in ["".join(quoted)]}
    for attribute in ("datetime", "pudate"):
        value = html.unescape(attributes.get(attribute, "")).strip()
        if value:
            parsed = _parse_time_value(value, zone)
            if parsed is not None:
                return parsed, False
    cjk = _CJK_DATE.search(_strip_tags(match.group(2)))
    if cjk:
        return _cjk(cjk, zone)
    return None, False


def _element_text(body: str, tag: str) -> str:
    """Text of the first <tag>…</tag> in the body, tags stripped and entities decoded."""
    match = re.search(rf"<{tag}\b[^>]*>(.*?)</{tag}\s*>", body, re.IGNORECASE | re.DOTALL)
    return _strip_tags(match.group(1)) if match else ""


def _strip_tags(fragment: str) -> str:
    return html.unescape(_ANY_TAG.sub(" ", fragment))


def _parse_time_value(value: str, zone: tzinfo) -> datetime | None:
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        match = _CJK_DATE.search(value)
        return _cjk(match, zone)[0] if match else None
    # A value without an offset is wall-clock time in the source's zone; with one, as written.
    return parsed.replace(tzinfo=zone) if parsed.tzinfo is None else parsed


def _cjk(match: re.Match[str], zone: tzinfo) -> tuple[datetime | None, bool]:
    year, month, day, hour, minute, second = (int(g) if g else 0 for g in match.groups())
    try:
        return datetime(year, month, day, hour, minute, second, tzinfo=zone), match.group(4) is None
    except ValueError:
        return None, False


def _days(gap: timedelta) -> str:
    return f"{gap.total_seconds() / 86400:.1f} days"


# --- HTML → content -----------------------------------------------------------------------

def _fragment(body: str) -> HtmlElement:
    if not body:
        return lxml.html.Element("div")
    try:
        return lxml.html.fragment_fromstring(body, create_parent="div")
    except (lxml.etree.ParserError, ValueError):
        return lxml.html.Element("div")


class _Content:
    """The parts of the HTML fragment a feed needs, made absolute and sanitized."""

    def __init__(self, root: HtmlElement, url: str) -> None:
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
        for block, _img in inline_blocks:
            _drop(block)
        without = [_inner_html(body)]
        if footer is not None:
            without.append(_inner_html(footer))
        self.body_html_without_images = sanitize("".join(without))


def _outside(element: HtmlElement, container: HtmlElement | None) -> bool:
    return container is None or all(a is not container for a in element.iterancestors())


def _leftover_body(root: HtmlElement) -> HtmlElement:
    """No <section>: the body is whatever is not address, time, lead figure or footer."""
    body = lxml.html.Element("div")
    for child in list(root):
        if child.tag not in ("address", "time", "figure", "footer"):
            body.append(child)
    return body


def _promote_lazy_images(root: HtmlElement) -> None:
    for img in root.iter("img"):
        src = (img.get("src") or "").strip()
        if src and not src.startswith("data:"):
            continue
        for attribute in _LAZY_SRC:
            lazy = (img.get(attribute) or "").strip()
            if lazy and not lazy.startswith("data:"):
                img.set("src", lazy)
                break


def _absolutize(root: HtmlElement, base: str) -> None:
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


def _inline_image_blocks(body: HtmlElement) -> list[tuple[HtmlElement, HtmlElement]]:
    """Each body image with the block that presents it: a <figure>, or the scraped
    `<p><img><small>caption</small></p>` pattern (rewritten as a <figure>), or the
    <img> alone."""
    blocks: list[tuple[HtmlElement, HtmlElement]] = []
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


def _add_image(images: dict[str, Image], img: HtmlElement, *, lead: bool) -> None:
    url = img.get("src")
    if not url or url in images:
        return
    figure = img.getparent()
    caption = credit = ""
    if figure is not None and figure.tag == "figure":
        caption_el = figure.find("figcaption")
        if caption_el is not None:
            cite = caption_el.find("cite")
            credit = plain(cite.text_content()) if cite is not None else ""
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


def _summary(body: HtmlElement | None) -> str:
    if body is None:
        return ""
    for paragraph in body.iter("p"):
        if next(paragraph.iter("img"), None) is not None:
            continue
        text = plain(paragraph.text_content())
        if text:
            return text
    return plain(body.text_content())[:500]


def _authors(text: str) -> tuple[str, ...]:
    return tuple(name for name in (plain(n) for n in _AUTHOR_SPLIT.split(plain(text))) if name)


def _original(footer: HtmlElement | None, url: str) -> tuple[str | None, str | None]:
    if footer is None:
        return None, None
    for link in footer.iter("a"):
        href = link.get("href")
        text = link.text_content()
        for marker, lang in _ORIGINAL_LANGUAGE:
            if href and marker in text and href.startswith("http") and normalize_url(href) != url:
                return href, lang
    return None, None


def _text_without(element: HtmlElement, skip_tag: str) -> str:
    parts = [element.text or ""]
    for child in element:
        if child.tag != skip_tag:
            parts.append(child.text_content())
        parts.append(child.tail or "")
    return "".join(parts)


def _html(element: HtmlElement) -> str:
    return str(lxml.html.tostring(element, encoding="unicode", with_tail=False))


def _inner_html(element: HtmlElement | None) -> str:
    if element is None:
        return ""
    parts = [html.escape(element.text or "", quote=False)]
    parts.extend(lxml.html.tostring(child, encoding="unicode", with_tail=True) for child in element)
    return "".join(parts)


def _drop(element: HtmlElement) -> None:
    """Remove an element but keep its tail text in place."""
    element.drop_tree()


def _int(value: str | None) -> int | None:
    try:
        number = int((value or "").strip())
    except ValueError:
        return None
    return number if number > 0 else None


def _hash(parts: Iterable[str]) -> str:
    digest = hashlib.sha256()
    for part in parts:
        digest.update(part.encode("utf-8", "surrogatepass"))
        digest.update(b"\0")
    return digest.hexdigest()[:32]
