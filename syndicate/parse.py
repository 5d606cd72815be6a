"""One article file → Entry: the parser's first, fast pass (content.py is the second).
Knows the archive's file format; knows nothing of feeds.

The format (SPEC §1): a `<!--epoch-->` capture-time header, a `[title](url)` line, a
separator of 3+ '-' or '=', then one HTML fragment with <address>, <time>, a lead
<figure>, the <section> body and a <footer>. Scraped archives damage every part of
this, so each step either copes or raises ArticleError with a reason a user can act on.
"""

from __future__ import annotations

import codecs
import functools
import hashlib
import html
import re
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta, tzinfo

from syndicate.clean import clean_title, normalize_url, plain, section_of, xml_safe
from syndicate.errors import ArticleError
from syndicate.model import Entry

DEFAULT_ENCODINGS = ("utf-8", "gb18030", "big5")
EARLIEST = datetime(1990, 1, 1, tzinfo=UTC)  # no archive of web news starts before this
_SLACK = timedelta(days=1)  # a capture clock a little ahead of ours is not "the future"
DISAGREEMENT = timedelta(days=1)  # header vs <time>: more than this usually means a wrong zone

_HEADER = re.compile(r"^\s*<!--\s*(.*?)\s*-->\s*$")
_TITLE_LINE = re.compile(r"^\s*\[(.*)\]\(\s*(\S+?)\s*\)\s*$")  # greedy: titles may hold ']'
_SEPARATOR = re.compile(r"^\s*(?:-{3,}|={3,})\s*$")
# The head as nearly every file has it: an epoch header, the title line and the separator,
# with nothing around them. What this matches, _head_by_lines reads the same way
# (tests/test_properties.py holds them to it); it is three to four times as fast.
_USUAL_HEAD = re.compile(r"<!--([0-9]{9,13})-->\n\[(.*)\]\((\S+?)\)\n(?:-{3,}|={3,})\n")
_CJK_DATE = re.compile(
    r"(\d{4})\s*年\s*(\d{1,2})\s*月\s*(\d{1,2})\s*日(?:\s*(\d{1,2})[:：时](\d{1,2})(?:[:：分](\d{1,2}))?)?"
)
_TIME_ELEMENT = re.compile(r"<time\b([^>]*)>(.*?)(?:</time\s*>|<)", re.IGNORECASE | re.DOTALL)
_ATTRIBUTE = re.compile(r"""([\w:-]+)\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s"'>]+))""")
_ANY_TAG = re.compile(r"<[^>]*>")
_ADDRESS = re.compile(r"<address\b[^>]*>(.*?)</address\s*>", re.IGNORECASE | re.DOTALL)
# The byline and <time> as nearly every body starts (SPEC §1): a plain name, then the
# source's wall-clock time in both attributes. What this matches, _byline and
# _source_time read the same way (tests/test_properties.py holds them to it); it is
# twice as fast as the two of them (4.7 against 10.5 us a body).
_USUAL_BYLINE_AND_TIME = re.compile(
    r'<address>([^<&]*)</address><time pudate="[^"<>&]*" '
    r'datetime="([0-9]{4}-[0-9]{2}-[0-9]{2}[ T][0-9]{2}:[0-9]{2}:[0-9]{2})">(?=[^<]*<)'
)  # (_TIME_ELEMENT takes a <time> only with a tag after it, its end or any other)
_AUTHOR_SPLIT = re.compile(r"\s*(?:,|，|、|;|；|\band\b|\bAND\b|和|与)\s*")


def read_entry(data: bytes, path: str, *, zone: tzinfo,
               encodings: Sequence[str] = DEFAULT_ENCODINGS, now: datetime) -> tuple[Entry, str]:
    """The first pass: decode, header, title line, dates and byline, found with regular
    expressions rather than an HTML parser, so that indexing a large archive is cheap.
    Returns the entry and the body HTML for `article_from`. Raises ArticleError."""
    warnings: list[str] = []
    text, exact = _text(data, path, encodings)
    header, raw_title, raw_url, body_start = _head(text, path)
    if not raw_url[:8].lower().startswith(("http://", "https://")) or len(raw_url) < 12:
        raise ArticleError(path, f"the title line's link is not an absolute http(s) URL: {raw_url!r}")
    url = normalize_url(raw_url)
    title = clean_title(raw_title)
    if not title:
        raise ArticleError(path, "the [title](url) line has an empty title")
    rest = text[body_start:]
    body = rest.strip()

    captured, recheck = _header_instant(header, now, warnings)
    byline, source_time, date_only = _byline_and_time(body, zone)
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

    authors = _authors(byline)
    entry = Entry(
        path=path, url=url, title=title, published=published, captured=captured or published,
        source_time=source_time, authors=authors, section=section_of(url),
        content_hash=_hash(title, authors, _utf8_body(data, text, body_start, rest, body)
                           if exact else body.encode("utf-8", "surrogatepass")),
        warnings=tuple(warnings),
        disagreement=disagreement, recheck=recheck,
    )
    return entry, body


def read_body(data: bytes, path: str, encodings: Sequence[str] = DEFAULT_ENCODINGS) -> str:
    """read_entry's body HTML alone, for the second pass, whose entry the first pass made:
    the head is found again, but no date, byline or hash is worked out (a body costs a
    third of an entry's time). Raises ArticleError as read_entry does for a file that
    no longer has a head."""
    text, _exact = _text(data, path, encodings)
    return text[_head(text, path)[3]:].strip()


def _text(data: bytes, path: str, encodings: Sequence[str]) -> tuple[str, bool]:
    """_xml_text with Unix line ends (and whether the text is still `data` as UTF-8)."""
    text, exact = _xml_text(data, path, encodings)
    if "\r" in text:
        return text.replace("\r\n", "\n").replace("\r", "\n"), False
    return text, exact


def _head(text: str, path: str) -> tuple[str | None, str, str, int]:
    """The header's text (None when there is none), the title line's title and link as
    written, and where the body starts. Raises ArticleError without a title line."""
    if usual := _USUAL_HEAD.match(text):
        return usual.group(1), usual.group(2), usual.group(3), usual.end()
    return _head_by_lines(text, path)


def _head_by_lines(text: str, path: str) -> tuple[str | None, str, str, int]:
    """_head for any file, blank lines, spaces and all. Only the first few lines are
    looked at one by one; the body is the rest of the text."""
    line, after = _line(text, _skip_blank(text, 0))
    header: str | None = None
    if match := _HEADER.match(line):
        header = match.group(1)
        line, after = _line(text, _skip_blank(text, after))
    title_match = _TITLE_LINE.match(line)  # past the last line, `line` is "" and fails
    if not title_match:
        if header is None:
            raise ArticleError(path, "not an article: no capture-time header and no [title](url) line")
        raise ArticleError(path, "no [title](url) line after the header")
    body_start = probe_at = after
    for _ in range(3):  # a separator line within the next three lines
        probe, probe_at = _line(text, probe_at)
        if _SEPARATOR.match(probe):
            body_start = probe_at
            break
    return header, title_match.group(1), title_match.group(2), body_start


# --- bytes → text -------------------------------------------------------------------------

def _xml_text(data: bytes, path: str, encodings: Sequence[str]) -> tuple[str, bool]:
    """decode(), without a leading BOM, and with the characters XML 1.0 forbids dropped;
    and whether that text is `data` read as UTF-8, byte for byte (see _utf8_body).
    Scanning the text for those costs more than decoding it, so the usual file is
    cleared on its bytes instead: one bytes.translate finds no control byte at all,
    which also makes decode()'s binary-file check unnecessary, and for UTF-8 leaves only
    the C1 controls (a byte search) and U+FFFE/U+FFFF (a character search) to rule out."""
    no_controls = len(data.translate(None, _XML_ILLEGAL_BYTES)) == len(data)
    text, utf8 = _decode(data, path, encodings, binary_checked=no_controls)
    text = text.lstrip("\ufeff")
    if (utf8 and no_controls and not (b"\xc2" in data and _C1_CONTROL_UTF8.search(data))
            and "\ufffe" not in text and "\uffff" not in text):
        # (lone surrogates cannot come from a strict UTF-8 decoding)
        return text, not data.startswith(codecs.BOM_UTF8)
    return xml_safe(text), False


def decode(data: bytes, path: str, encodings: Sequence[str]) -> str:
    """Bytes → text. UTF-8 (with or without BOM) first, then the configured encodings in
    order, taking the first that decodes cleanly *and* reads as plausible text: Big5 bytes
    often decode as GB18030 without error (and the reverse), so a clean decode alone
    proves nothing. Detection (charset-normalizer) is the last resort; a file that still
    reads badly is skipped."""
    return _decode(data, path, encodings)[0]


def _decode(data: bytes, path: str, encodings: Sequence[str],
            binary_checked: bool = False) -> tuple[str, bool]:
    """decode(), and whether the text is the bytes read as UTF-8. `binary_checked`: the
    caller found no control byte in the data, so it is not binary."""
    if not data or data.isspace():
        raise ArticleError(path, "empty file")
    if binary_checked and data[0] not in _BOM_FIRST_BYTES:
        # The usual file, UTF-8 without a BOM: what the loop below would try first.
        try:
            return data.decode("utf-8"), True
        except UnicodeDecodeError:
            pass
    if data.startswith(codecs.BOM_UTF8):
        try:
            return data[3:].decode("utf-8"), True
        except UnicodeDecodeError:
            raise ArticleError(path, "encoding: starts with a UTF-8 BOM but is not valid UTF-8") from None
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        try:
            return data.decode("utf-16"), False
        except UnicodeDecodeError:
            raise ArticleError(path, "encoding: starts with a UTF-16 BOM but is not valid UTF-16") from None
    sample = data[:8192]
    if not binary_checked and (b"\x00" in sample or _control_ratio(sample) > 0.05):
        raise ArticleError(path, "binary file, not text")
    tried: list[str] = []
    for encoding in dict.fromkeys(["utf-8", *encodings]):
        try:
            text = data.decode(encoding)
        except (UnicodeDecodeError, LookupError):
            continue
        tried.append(encoding)
        utf8 = codecs.lookup(encoding).name == "utf-8"
        if utf8 or plausible_text(text):
            return text, utf8
    detected = _detect(data)
    if detected is not None:
        return detected, False
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


_BOM_FIRST_BYTES = {codecs.BOM_UTF8[0], codecs.BOM_UTF16_LE[0], codecs.BOM_UTF16_BE[0]}
_CONTROL_BYTES = bytes(b for b in range(0x20) if b not in (0x09, 0x0A, 0x0C, 0x0D, 0x1B))
# The bytes of UTF-8 text that XML 1.0 forbids: C0 controls but tab, LF and CR, and DEL
# (a superset of _CONTROL_BYTES); and the two-byte forms of the C1 controls.
_XML_ILLEGAL_BYTES = bytes(b for b in range(0x20) if b not in (0x09, 0x0A, 0x0D)) + b"\x7f"
_C1_CONTROL_UTF8 = re.compile(b"\xc2[\x80-\x9f]")


def _control_ratio(sample: bytes) -> float:
    controls = len(sample) - len(sample.translate(None, _CONTROL_BYTES))
    return controls / max(1, len(sample))


def _line(text: str, start: int) -> tuple[str, int]:
    """The line that starts at `start` and where the next one starts. Past the last line
    (start > len(text)) the line is "" and so is every line after it."""
    end = text.find("\n", start)
    if end < 0:
        return text[start:], len(text) + 1
    return text[start:end], end + 1


def _skip_blank(text: str, start: int) -> int:
    """The start of the first line at or after `start` that is not blank."""
    while start <= len(text):
        line, after = _line(text, start)
        if line.strip():
            return start
        start = after
    return start


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
    return EARLIEST <= instant <= now + _SLACK


def _byline_and_time(body: str, zone: tzinfo) -> tuple[str, datetime | None, bool]:
    """_byline(body) and _source_time(body, zone): the usual start of a body is read
    with one regular expression, any other body by the two of them."""
    if usual := _USUAL_BYLINE_AND_TIME.match(body):
        try:
            return usual.group(1), datetime.fromisoformat(usual.group(2)).replace(tzinfo=zone), False
        except ValueError:  # no such day or hour: _source_time looks further
            pass
    return _byline(body), *_source_time(body, zone)


def _source_time(body: str, zone: tzinfo) -> tuple[datetime | None, bool]:
    """The <time> value as an aware datetime, and whether it is only a date."""
    match = _TIME_ELEMENT.search(body)
    if match is None:
        return None, False
    # (One of the three quoting forms matched; the others' groups are empty.)
    attributes = {name.lower(): double or single or bare
                  for name, double, single, bare in _ATTRIBUTE.findall(match.group(1))}
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


def _byline(body: str) -> str:
    """Text of the body's first <address>, tags stripped and entities decoded."""
    match = _ADDRESS.search(body)
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


# An archive's bylines are a newsroom's few hundred names, over and over: each is split
# once (three regular expressions, 6% of a file's first pass).
@functools.lru_cache(maxsize=4096)
def _authors(text: str) -> tuple[str, ...]:
    # The split takes the whitespace around each separator, so every name of plain text
    # is plain text itself.
    return tuple(name for name in _AUTHOR_SPLIT.split(plain(text)) if name)


def _hash(title: str, authors: Sequence[str], body: bytes) -> str:
    """Of the title, each author and the body's UTF-8 bytes, each followed by a NUL."""
    digest = hashlib.sha256("\0".join((title, *authors, "")).encode("utf-8", "surrogatepass"))
    digest.update(body)
    digest.update(b"\0")
    return digest.hexdigest()[:32]


def _utf8_body(data: bytes, text: str, start: int, rest: str, body: str) -> bytes:
    """body.encode() for text that is `data` read as UTF-8, where body is text[start:]
    (`rest`) stripped: taken from `data` rather than encoded again, which costs as much
    as the decoding did. Bytes strip only ASCII whitespace; when str.strip took anything
    else (U+3000, U+00A0, ...), fewer bytes than characters go, and the body is encoded."""
    offset = len(text[:start].encode("utf-8"))
    raw = data[offset:].strip()
    if len(data) - offset - len(raw) == len(rest) - len(body):
        return raw
    return body.encode("utf-8", "surrogatepass")
