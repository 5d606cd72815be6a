"""Property tests: hostile text makes the whole trip intact, and URL identity is stable.

- Any title that an article file can hold (arbitrary Unicode, XML-illegal characters,
  markup and character references included), written in the archive's format, parsed by
  `parse_article`, rendered to RSS, Atom and JSON Feed and read back by feedparser / json,
  comes back equal to the input minus only what must go: characters XML 1.0 forbids (and
  the C1 controls), HTML tags, with entities decoded and whitespace folded.
- The same for the summary (the first non-blank paragraph of an arbitrary body).
- `normalize_url` is idempotent and drops every `utm_*` parameter, keeping the others.
"""

from __future__ import annotations

import html
import json
import re
import string
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, unquote, urlencode, urlsplit
from zoneinfo import ZoneInfo

import feedparser
import lxml.etree
import lxml.html
import pytest
from hypothesis import assume, example, given, settings
from hypothesis import strategies as st

from syndicate import content
from syndicate.clean import normalize_url, section_of, xml_safe
from syndicate.content import parse_article
from syndicate.errors import ArticleError
from syndicate.model import FORMATS, Channel, Entry, Format, Site, Stamp
from syndicate.parse import read_body, read_entry
from syndicate.render import RENDERERS
from syndicate.select import apply_ledger, merge_captures, newest_first, story_order
from tests.conftest import SEEDS

ZONE = ZoneInfo("Asia/Shanghai")
NOW = datetime(2025, 1, 1, tzinfo=UTC)
URL = "https://cn.nytimes.com/world/20240516/property-test/"
SITE = Site(title="Properties", base_url="https://feeds.example.org/", source=Path("/unused/in"),
            output=Path("/unused/out"), cache=Path("/unused/cache"), timezone="Asia/Shanghai")
CHANNEL = Channel(id="props", title="Properties", link="https://cn.nytimes.com/",
                  description="property tests", images="both")
SETTINGS = settings(max_examples=150, deadline=None)

# --- what the reader must get back (written from the specs, not from syndicate.clean) --

# XML 1.0 §2.2: Char ::= #x9 | #xA | #xD | [#x20-#xD7FF] | [#xE000-#xFFFD] | [#x10000-#x10FFFF]
NOT_XML_CHAR = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
# XML allows the C1 controls but discourages them, and no reader wants them in text.
C1_CONTROL = re.compile("[\x7f-\x9f]")
# An HTML start or end tag: '<', optional '/', a name that starts with a letter, then
# attributes up to '>'. A '<' not followed by a letter ('利率<3%') is text.
TAG = re.compile(r"</?[A-Za-z][A-Za-z0-9]*(?:\s[^<>]*)?/?>")


def text_only(text: str) -> str:
    """Drop what XML cannot carry."""
    return C1_CONTROL.sub("", NOT_XML_CHAR.sub("", text))


def folded(text: str) -> str:
    """Runs of whitespace as one space, none at the ends (str.split's Unicode whitespace)."""
    return " ".join(text.split())


def expected_title(raw: str) -> str:
    """The title a reader shows for the `[raw](url)` line: tags removed, then entities
    decoded (so '&lt;b&gt;' is shown as '<b>'), XML-illegal characters dropped (before and
    after decoding: '&#1;' decodes to one), whitespace folded."""
    return folded(text_only(html.unescape(TAG.sub("", text_only(raw)))))


def expected_summary(paragraphs: list[str]) -> str:
    """The first paragraph with any text, as plain text."""
    return next((p for p in (folded(text_only(p)) for p in paragraphs) if p), "")


def as_read(fmt: Format, text: str) -> str:
    """What the client shows for `text`. feedparser "repairs" any text whose Latin-1
    encoding is valid UTF-8, taking it for double-encoded ('Â¡' becomes '¡'; feedparser
    mixin.py). syndicate writes the right bytes (the JSON rendering, read with plain json,
    proves it), so for RSS and Atom the expectation is put through the same repair."""
    if fmt == "json":
        return text
    try:
        return text.encode("iso-8859-1").decode("utf-8")
    except UnicodeError:
        return text


# --- the article file ------------------------------------------------------------------

# Long, plain, after the body: a file whose first 8 KiB are more than 5% control bytes, or
# hold a NUL, is taken for binary and skipped (parse.decode, as git and grep do). The
# padding keeps each generated file a normal-sized article with a hostile title or lead;
# it sits in the footer, which is part of the content but not of the summary.
PADDING = "<footer><p>" + "padding text. " * 700 + "</p></footer>"


def article_file(title: str, paragraphs: list[str]) -> bytes:
    body = "".join(f"<p>{html.escape(p, quote=False)}</p>" for p in paragraphs)
    return (
        "<!--1715830622000-->\n"
        f"[{title}]({URL})\n"
        "------\n"
        "\n"
        '<address>DAVID PIERSON</address><time pudate="2024-05-16 11:19:41" '
        'datetime="2024-05-16 11:19:41">2024年5月16日</time>'
        f"<section>{body}</section>{PADDING}\n"
    ).encode()


def read_back(title: str, paragraphs: list[str], fmt: Format) -> tuple[str, str]:
    """(title, summary) as a client reads them from the rendered feed."""
    article = parse_article(article_file(title, paragraphs), "property.txt", zone=ZONE,
                            now=NOW).article
    data = RENDERERS[fmt](SITE, CHANNEL, [article])
    if fmt == "json":
        item = json.loads(data)["items"][0]
        return item["title"], item.get("summary", "")
    parsed = feedparser.parse(data)
    assert not parsed.bozo, parsed.get("bozo_exception")
    [entry] = parsed.entries
    return shown(entry.title_detail), shown(entry.get("summary_detail"))


def shown(detail: Any) -> str:
    """The text a reader shows for one of feedparser's values. feedparser says how it took
    the element (RSS <description> is HTML, by the RSS spec and every reader); HTML is
    shown as its text, so a feed that HTML-escapes plain text reads back as that text."""
    if detail is None:
        return ""
    if detail.type not in ("text/html", "application/xhtml+xml"):
        return str(detail.value)
    if not detail.value.strip():
        return ""
    return folded(lxml.html.fragment_fromstring(detail.value, create_parent="div").text_content())


# --- strategies --------------------------------------------------------------------------

# What scraped text throws at us, beyond what st.characters() draws often: characters XML
# forbids or discourages, odd whitespace, and the characters of markup and references.
# NUL is left out: it marks a file as binary (see PADDING). Lone surrogates are left out
# too: a UTF-8 file cannot hold one, so they never reach the parser; the only way to
# write one is a reference like '&#xD800;', which decodes to U+FFFD (an example below).
HOSTILE_CHARS = [
    "\x01", "\x08", "\x0b", "\x0c", "\x1b", "\x1f", "\x7f", "\x85", "\x9f", "\ufffe", "\uffff",
    "\t", "\xa0", "\u2028", "\u3000", "\ufeff", "<", ">", "&", ";", "#", "[", "]", "(", ")",
]
HOSTILE_CHUNKS = [
    "<b>", "</b>", "<i class='x'>", "<br/>", "<script>alert(1)</script>", "<img src=x onerror=y>",
    "&amp;", "&lt;", "&gt;", "&lt;b&gt;", "&#x41;", "&#1;", "&#10;", "&#xD800;", "&copy", "&nbsp;",
    "]]>", "<!--", "-->", "<![CDATA[", "](https://example.org/x)", "利率<3%", "R&D", "😀", "עברית",
]
hostile_text = st.lists(
    st.one_of(st.text(st.one_of(st.characters(exclude_characters="\x00", exclude_categories=["Cs"]),
                                st.sampled_from(HOSTILE_CHARS)), max_size=12),
              st.sampled_from(HOSTILE_CHUNKS)),
    max_size=6,
).map("".join)

# A title line is one line: a line break in the title ends it, and no reader of the
# format can tell where the title was meant to go on. That is the only thing a title
# cannot hold. (`](` followed by a URL is fine: the title line's pattern is greedy, so
# only the last `](…)` on the line is the article's link; see the explicit examples.)
LINE_BREAKS = ("\n", "\r")


@pytest.mark.parametrize("fmt", FORMATS)
@SETTINGS
@given(title=hostile_text)
@example(title="R&D <b>增长</b> \"引号\" 'single' ]]> 😀 עברית")
@example(title="see [this](https://example.org/a) and more")
@example(title="ends like a link](https://example.org/a)")
@example(title="城市供水系统 \x01升级 \x08引发 \x0b居民 \x1b关注\ufffe")
@example(title="&lt;script&gt;alert(1)&lt;/script&gt; &#xD800; &#1;")
def test_title_round_trips(fmt: Format, title: str) -> None:
    assume(not any(brk in title for brk in LINE_BREAKS))
    expected = expected_title(title)
    assume(expected)  # a title that cleans to nothing makes the file a skipped one
    assert read_back(title, ["lead"], fmt)[0] == as_read(fmt, expected)


# Titles built from known parts, so the expectation needs no tag or entity parsing:
# text, tags (removed), character references (decoded to their character).
# Text that survives as written: not markup, and not what XML 1.0 forbids (controls,
# surrogates, U+FFFE/U+FFFF), which every format drops (test_title_round_trips covers those).
plain_chars = st.characters(exclude_categories=("Cs", "Cc"), exclude_characters="<&\ufffe\uffff")
tag_names = st.sampled_from(["b", "i", "em", "strong", "span", "a", "font", "br", "sup", "h1"])
tags = st.builds(
    lambda name, end, attrs: f"<{'/' if end else ''}{name}{attrs}>",
    tag_names, st.booleans(),
    st.sampled_from(["", " class=\"x\"", " href='https://e.org/?a=1&b=2'", "/", " data-x=\"&lt;\""]),
)
referenced = st.characters(exclude_categories=("Cs", "Cc")).filter(
    lambda c: html.unescape(f"&#{ord(c)};") == c)  # HTML maps some code points elsewhere


@st.composite
def marked_up_title(draw: st.DrawFn) -> tuple[str, str]:
    raw, visible = [], []
    kinds = draw(st.lists(st.sampled_from(["text", "tag", "ref", "lt"]), min_size=1, max_size=8))
    for at, kind in enumerate(kinds):
        if kind == "text":
            text = draw(st.text(plain_chars, min_size=1, max_size=8))
            raw.append(text)
            visible.append(text)
        elif kind == "tag":
            raw.append(draw(tags))
        elif kind == "ref":
            char = draw(referenced)
            form = draw(st.sampled_from(["&#{};", "&#x{:x};", "&#X{:X};"]))
            raw.append(form.format(ord(char)))
            visible.append(char)
        else:  # a '<' that starts no tag (a bare one only last: "<" + "A>" is a tag)
            text = draw(st.sampled_from(["<3%", "< 5", "<="] + (["<"] if at == len(kinds) - 1
                                                                  else [])))
            raw.append(text)
            visible.append(text)
    return "".join(raw), folded("".join(visible))


@pytest.mark.parametrize("fmt", FORMATS)
@SETTINGS
@given(case=marked_up_title())
def test_marked_up_title_shows_its_text(fmt: Format, case: tuple[str, str]) -> None:
    raw, expected = case
    assume(expected and not any(brk in raw for brk in LINE_BREAKS))
    assert read_back(raw, ["lead"], fmt)[0] == as_read(fmt, expected)


@pytest.mark.parametrize("fmt", FORMATS)
@SETTINGS
@given(paragraphs=st.lists(hostile_text, min_size=1, max_size=4))
@example(paragraphs=["  ", "网络安全周期间，专家提醒市民不要点击来历不明的链接。"])
@example(paragraphs=["a <b>bold</b> claim & <script>alert(1)</script> more"])
def test_summary_round_trips(fmt: Format, paragraphs: list[str]) -> None:
    """Paragraph text is HTML-escaped into the body, as any text in an article is; the
    summary must show exactly that text, whatever it looks like."""
    expected = expected_summary(paragraphs)
    assume(expected)  # an all-blank body has no summary to compare
    assert read_back("Title", paragraphs, fmt)[1] == as_read(fmt, expected)


# --- URL identity ------------------------------------------------------------------------

label = st.from_regex(r"[a-z0-9]([a-z0-9-]{0,8}[a-z0-9])?", fullmatch=True)
hosts = st.lists(label, min_size=1, max_size=3).map(".".join).flatmap(
    lambda host: st.sampled_from([host, host.upper(), host.capitalize()]))
segments = st.text(string.ascii_letters + string.digits + "-._~%", max_size=8)
paths = st.builds(lambda segs, slash: "/" + "/".join(segs) + ("/" if slash else ""),
                  st.lists(segments, max_size=4), st.booleans())
utm_keys = st.builds(lambda prefix, rest: prefix + rest, st.sampled_from(["utm_", "UTM_", "Utm_"]),
                     st.text(string.ascii_lowercase + string.digits + "_", min_size=1, max_size=12))
# Kept keys start with 'k': no tracking parameter does.
kept_keys = st.text(string.ascii_lowercase + string.digits, max_size=6).map(lambda k: "k" + k)
values = st.text(st.characters(exclude_categories=["Cs"]), max_size=8)


@st.composite
def article_urls(draw: st.DrawFn) -> tuple[str, list[tuple[str, str]]]:
    """An article URL, and the non-tracking parameters it carries, in order."""
    params = draw(st.lists(st.tuples(st.one_of(utm_keys, kept_keys), values), max_size=5))
    scheme = draw(st.sampled_from(["http", "https", "HTTP", "Https"]))
    port = draw(st.sampled_from(["", ":80", ":443", ":8080"]))
    query = urlencode(params)
    fragment = draw(st.sampled_from(["", "#comments", "#"]))
    url = f"{scheme}://{draw(hosts)}{port}{draw(paths)}{'?' + query if query else ''}{fragment}"
    return url, [(k, v) for k, v in params if not k.lower().startswith("utm_")]


@SETTINGS
@given(case=article_urls())
@example(case=("HTTP://CN.NYTimes.COM/opinion/20240527/letters?gclid=1&utm_campaign=weekly#c", []))
def test_normalize_url_is_idempotent(case: tuple[str, list[tuple[str, str]]]) -> None:
    once = normalize_url(case[0])
    assert normalize_url(once) == once


@SETTINGS
@given(case=article_urls())
@example(case=("https://cn.nytimes.com/world/20240520/dup-story/?utm_source=x&k=1",
               [("k", "1")]))
# GA4's own parameters hold more than letters after 'utm_'.
@example(case=("https://cn.nytimes.com/world/20240520/dup-story/?utm_source_platform=x&k=1",
               [("k", "1")]))
def test_normalize_url_drops_utm_parameters(case: tuple[str, list[tuple[str, str]]]) -> None:
    url, kept = case
    query = parse_qsl(urlsplit(normalize_url(url)).query, keep_blank_values=True)
    assert [k for k, _ in query if k.lower().startswith("utm_")] == []
    assert query == kept


@SETTINGS
@given(case=article_urls())
@example(case=("https://cn.nytimes.com?next=/world/x/", []))
@example(case=("https://cn.nytimes.com/2024/05/World%20News/x", []))
def test_section_is_the_first_word_segment_of_the_urls_path(
        case: tuple[str, list[tuple[str, str]]]) -> None:
    """section_of reads normalized URLs without urllib: it must agree with urllib."""
    for url in (case[0], normalize_url(case[0])):
        words = [s for s in urlsplit(url).path.split("/") if s and not s.isdigit()]
        assert section_of(url) == (unquote(words[0]).lower() if words else "")


url_tails = st.text(st.sampled_from([*"/?#;[]:@=&%.-_~!$'()*+,", "\t", "\n", " ", "\u3000", "\x01",
                                     "a", "Z", "0", "图"]), max_size=12)
# The parts of a URL that looks absolute, or nearly: for the shortcuts that skip urllib.
URL_PARTS = dict(scheme=st.sampled_from(["http://", "https://", "HTTPS://", "Http://", "ftp://", "//"]),
                 host=st.text(st.sampled_from([*"ab-.09XY", "图"]), max_size=6),
                 port=st.sampled_from(["", ":80", ":", ":8080", ":99999", ":x"]), tail=url_tails)


@SETTINGS
@given(**URL_PARTS)
@example(scheme="https://", host="a", port="", tail="/b?")
@example(scheme="https://", host="a", port="", tail="/b;")
@example(scheme="https://", host="a", port="", tail="/b;?q")
@example(scheme="https://", host="a", port="", tail="/b#")
@example(scheme="https://", host="a", port="", tail="/b?#")
@example(scheme="https://", host="a", port="", tail="/b#f")
@example(scheme="https://", host="a", port="", tail="/b\tc")
@example(scheme="https://", host="a", port="", tail="/b c")
@example(scheme="https://", host="a", port="", tail="?")
@example(scheme="https://", host="[::1", port="", tail="/")
def test_already_absolute_urls_skip_urljoin_only_when_it_would_change_nothing(
        scheme: str, host: str, port: str, tail: str) -> None:
    """absolute() gives an absolute http(s) URL back as it is when it looks plain enough;
    it must be exactly what resolving it with urljoin gives, whatever it holds."""
    from syndicate.clean import _joined, absolute

    url = scheme + host + port + tail
    base = "https://cn.nytimes.com/world/20240516/story/"
    assert absolute(url, base) == (_joined(url.strip(), base) if url.strip() and
                                   not url.strip().startswith("#") else None)


@SETTINGS
@given(**URL_PARTS)
@example(scheme="https://", host="www.nytimes.com", port="", tail="/2024/05/16/world/a.html")
@example(scheme="https://", host="a", port="", tail="/b.html\x01")
@example(scheme="https://", host="a", port="", tail="/b//c.html")
@example(scheme="https://", host="a", port="", tail="/..")
@example(scheme="https://", host="a", port="", tail="/b/c")
@example(scheme="https://", host="a", port="", tail="")
def test_normalize_url_takes_its_shortcut_only_when_it_would_change_nothing(
        scheme: str, host: str, port: str, tail: str) -> None:
    """normalize_url gives a URL back as it is, without urllib, when it looks normal
    already; it must be exactly what the whole normalization gives."""
    from syndicate.clean import _normalized

    url = (scheme + host + port + tail).strip()
    try:
        expected = _normalized(url)
    except ValueError:  # urllib refuses it (a bad port): so must the shortcut
        with pytest.raises(ValueError):
            normalize_url(url)
        return
    assert normalize_url(url) == expected



@SETTINGS
@given(**URL_PARTS, key=st.sampled_from(["url", "u", "src", "image", "img", "URL", "uri", ""]),
       inner=st.sampled_from(["", "https://", "http://", "//", "HTTPS://", "ftp://"]),
       inner_host=st.text(st.sampled_from([*"ab-.09", "图"]), max_size=4), inner_tail=url_tails,
       extension=st.sampled_from([".webp", ".JPG", ".jpeg.gif", ".txt", "", ".png/"]),
       after=st.sampled_from(["", "&w=800", "#f", "?x", "%2F.gif", "+.png", ".bmp"]))
@example(scheme="https://", host="images.weserv.nl", port="", tail="/", key="url", inner="",
         inner_host="static01.nyt.com", inner_tail="/images/2024/05/16/a-master1050",
         extension=".webp", after="")
@example(scheme="https://", host="a", port="", tail="/", key="url", inner="",
         inner_host="b", inner_tail="//c", extension=".webp", after="")
@example(scheme="https://", host="a", port="", tail="/", key="url", inner="", inner_host="b",
         inner_tail="", extension=".webp", after="")
@example(scheme="https://", host="a", port="", tail="/", key="url", inner="", inner_host="b",
         inner_tail="/c", extension="", after="%2F.gif")
@example(scheme="https://", host="a", port="", tail="/", key="uri", inner="", inner_host="b",
         inner_tail="/c", extension=".webp", after="")
def test_usual_image_urls_are_typed_as_urllib_types_them(
        scheme: str, host: str, port: str, tail: str, key: str, inner: str, inner_host: str,
        inner_tail: str, extension: str, after: str) -> None:
    """image_mime types the usual proxied image URL without urllib: whatever the URL, its
    answer must be the one parsing it with urlsplit and parse_qsl gives."""
    from syndicate.clean import _parsed_image_mime, image_mime

    url = f"{scheme}{host}{port}{tail}?{key}={inner}{inner_host}{inner_tail}{extension}{after}"
    try:
        expected = _parsed_image_mime(url)
    except ValueError:  # urllib refuses it (a bad host): so must image_mime
        with pytest.raises(ValueError):
            image_mime(url)
        return
    assert image_mime(url) == expected


def test_the_usual_proxied_image_url_is_typed_without_urllib() -> None:
    from syndicate.clean import _USUAL_PROXIED, image_mime

    url = "https://images.weserv.nl/?url=static01.nyt.com/images/2024/05/16/a/b-master1050.webp"
    assert _USUAL_PROXIED.fullmatch(url)
    assert image_mime(url) == "image/webp"

def test_xml_safe_keeps_exactly_what_xml_allows_in_text() -> None:
    """Every code point, against XML 1.0's Char production (less DEL and the C1 controls,
    which it allows but no text wants), written here as arithmetic rather than a regex."""

    def wanted(code: int) -> bool:
        return (code in (0x9, 0xA, 0xD) or 0x20 <= code <= 0x7E or 0xA0 <= code <= 0xD7FF
                or 0xE000 <= code <= 0xFFFD or 0x10000 <= code <= 0x10FFFF)

    every = "".join(map(chr, range(0x110000)))
    assert xml_safe(every) == "".join(char for char in every if wanted(ord(char)))


@SETTINGS
@given(body=st.text(max_size=300), encoding=st.sampled_from(["utf-8", "utf-8-sig", "utf-16"]))
@example(body="a\x85b\x7fc\ufffed\x0b", encoding="utf-8")
def test_body_text_drops_exactly_what_xml_forbids(body: str, encoding: str) -> None:
    """The first pass decides on the bytes whether a UTF-8 file needs xml_safe: the
    body it returns must be the one xml_safe would give, whatever the characters."""
    head = f"<!--1715830622000-->\n[Title]({URL})\n------\n<time>2024年5月16日</time>\n"
    try:
        data = (head + body).encode(encoding)
    except UnicodeEncodeError:
        assume(False)
    try:
        _entry, got = read_entry(data, "x.txt", zone=ZONE, now=NOW)
    except ArticleError:
        return  # binary-looking or undecodable: skipped before any text is made
    text = xml_safe((head + body).replace("\r\n", "\n").replace("\r", "\n"))
    assert got == text[text.index("------\n") + 7:].strip()
    assert read_body(data, "x.txt") == got  # what the second pass reads of the same file


# Pieces of an article's first lines: what the usual head is made of, and what varies.
HEAD_PIECES = ["<!--", "-->", "1715830622000", "1715830622", "171583062200012", "[", "]", "(", ")",
               "](", "[标题]", "(https://cn.nytimes.com/a/)", "\n", " ", "\t", "\u3000", "---",
               "===", "-", "x"]
head_pieces = st.lists(st.sampled_from(HEAD_PIECES), max_size=16).map("".join)


@SETTINGS
@given(header=head_pieces, title=head_pieces, link=head_pieces, separator=head_pieces,
       body=head_pieces)
@example(header="1715830622000", title="a](b) c", link="https://x/a)b", separator="---", body="")
@example(header="1715830622000", title="a](b)", link="https://x/", separator="---", body="")
@example(header="1715830622000", title="t", link="https://x/", separator="---\n---", body="")
@example(header="1715830622000", title="t", link="https://x/ ", separator="===", body="x")
def test_the_usual_head_is_read_as_line_by_line(header: str, title: str, link: str,
                                               separator: str, body: str) -> None:
    """parse._head reads the usual head with one regular expression: whatever it takes
    that way must be what reading the lines one by one gives."""
    from syndicate.parse import _head, _head_by_lines

    text = f"<!--{header}-->\n[{title}]({link})\n{separator}\n{body}"
    for variant in (text, text.lstrip("<!-")):
        try:
            expected = _head_by_lines(variant, "x.txt")
        except ArticleError as e:
            with pytest.raises(ArticleError) as raised:
                _head(variant, "x.txt")
            assert raised.value.reason == e.reason
            continue
        assert _head(variant, "x.txt") == expected


# Pieces of a body's first tags: what the usual byline and <time> are made of, and what varies.
BYLINE_PIECES = ["<address>", "</address>", "<address class=x>", "</ADDRESS >", "<time", "<time>",
                 "</time>", " pudate=", " datetime=", " DateTime=", '"', "'", ">", "<", "&amp;",
                 "&", "<b>", "DAVID PIERSON", "甲", "2024-05-16 11:19:41", "2024-13-16 11:19:41",
                 "2024-05-16T25:19:41", "2024-05-16T11:19:41", "２０２４", "2024年5月16日", " ",
                 "\n", "x"]
byline_pieces = st.lists(st.sampled_from(BYLINE_PIECES), max_size=12).map("".join)


TIME_VALUES = ["2024-05-16 11:19:41", "2024-05-16T11:19:41", "2024-13-16 11:19:41",
               "2024-05-16T25:19:41", "2024-02-30 00:00:00", "２０２４-05-16 11:19:41",
               "2024-05-16 11:19:41Z", "2024-05-16", "2024年5月16日", ""]


@SETTINGS
@given(name=byline_pieces, pudate=byline_pieces,
       value=st.one_of(st.sampled_from(TIME_VALUES), byline_pieces), rest=byline_pieces,
       shuffled=byline_pieces)
@example(name="DAVID PIERSON", pudate="2024-05-16 11:19:41", value="2024-05-16 11:19:41",
         rest="2024年5月16日</time>", shuffled="")
@example(name="甲", pudate="", value="2024-02-30 11:19:41", rest="2024年5月16日</time>",
         shuffled="")
@example(name="甲", pudate="a>b", value="2024-05-16 11:19:41", rest="</time>", shuffled="")
@example(name="&amp;", pudate="", value="2024-05-16 11:19:41", rest="<b>", shuffled="")
@example(name="甲", pudate="", value="2024-05-16 11:19:41Z", rest="</time>", shuffled="")
@example(name="甲", pudate="", value="2024-05-16 11:19:41", rest="", shuffled="")
def test_the_usual_byline_and_time_are_read_as_the_general_way(
        name: str, pudate: str, value: str, rest: str, shuffled: str) -> None:
    """parse._byline_and_time reads the usual start of a body with one regular
    expression: whatever it takes that way must be what _byline and _source_time give."""
    from syndicate.parse import _byline, _byline_and_time, _source_time

    usual = f'<address>{name}</address><time pudate="{pudate}" datetime="{value}">{rest}'
    for body in (usual, shuffled):
        assert _byline_and_time(body, ZONE) == (_byline(body), *_source_time(body, ZONE))


@SETTINGS
@given(header=head_pieces, title=head_pieces, separator=head_pieces, body=head_pieces,
       link=st.sampled_from([URL, f" {URL}\t", "http://cn.nytimes.com/a b/", "/a/"]),
       line_end=st.sampled_from(["\n", "\r\n", "\r"]))
@example(header="1715830622000", title="t", separator="---", body=" x ", link=URL,
         line_end="\r\n")
def test_the_second_pass_reads_the_body_the_first_pass_did(
        header: str, title: str, separator: str, body: str, link: str, line_end: str) -> None:
    """parse.read_body (the second pass) finds the head again without reading dates or
    bylines: its body must be read_entry's, for any head read_entry takes."""
    text = line_end.join([f"<!--{header}-->", f"[{title}]({link})", separator,
                          f"<time>2024年5月16日</time>{body}"])
    data = text.encode("utf-8")
    try:
        _entry, expected = read_entry(data, "x.txt", zone=ZONE, now=NOW)
    except ArticleError:
        return
    assert read_body(data, "x.txt") == expected


@SETTINGS
@given(byline=st.lists(st.one_of(hostile_text, st.sampled_from(
    [",", "，", "、", ";", "and", " and ", "AND", "和", "与", " ", "\u3000", "\t", "\x01"])),
    max_size=8).map("".join))
@example(byline="DAVID PIERSON")
@example(byline=" 甲 ， 乙and 丙 and丁、 和平 与\u3000 ")
def test_authors_are_split_from_plain_text_as_plain_names(byline: str) -> None:
    """parse._authors folds the byline to plain text once, then splits it: every name
    must be the plain text of its piece, as folding each piece again would make it."""
    from syndicate.clean import plain
    from syndicate.parse import _AUTHOR_SPLIT, _authors

    assert _authors(byline) == tuple(
        name for name in (plain(piece) for piece in _AUTHOR_SPLIT.split(plain(byline))) if name)


# Fragments of article HTML: the parts the second pass looks for, and what breaks them.
HTML_CHUNKS = [
    "<section>", "</section>", "<footer class='f'>", "</footer>", "<figure>", "</figure>",
    "<p>", "</p>", "<div id=\"a>b\">", "</div>", "<img src='x.jpg' alt='a<b'>", "<br>",
    "<small>", "</small>", "<!-- note -->", "<![CDATA[x]]>", "<script>1<2</script>",
    "<style>p>a{}</style>", "<a href='/x?a=1&b=2'>", "</a>", "&amp;", "&lt;", "<?pi x?>",
    "<html>", "<body class=b>", "<table><td>", "<textarea><b></textarea>", "< b>", "</",
]
html_fragment = st.lists(st.one_of(st.sampled_from(HTML_CHUNKS), hostile_text),
                         max_size=12).map("".join)


@SETTINGS
@given(body=html_fragment)
@example(body="  lead text<section a='1'>x<p>y</p>tail</section>after<footer></footer>")
@example(body="<!DOCTYPE html><html><head><title>no body</title></head>")
def test_second_pass_reads_html_as_lxml_html_does(body: str) -> None:
    """content.py parses with lxml's HTML parser without lxml.html's element classes,
    and takes an element's inner HTML from one serialization of it: the tree must be
    the one lxml.html.fragment_fromstring gives, and the inner HTML of each element the
    second pass takes it of (the <section>, <footer> or whole fragment) the escaped
    text and the children as lxml.html serializes them one by one."""
    ours = content._fragment(body)
    try:
        theirs = lxml.html.fragment_fromstring(body, create_parent="div")
    except (lxml.etree.ParserError, ValueError, AssertionError):  # see content._fragment
        theirs = lxml.html.Element("div")
    assert lxml.html.tostring(ours) == lxml.html.tostring(theirs)
    for element in [ours, *ours.iter("section", "footer")]:
        expected = html.escape(element.text or "", quote=False) + "".join(
            lxml.html.tostring(child, encoding="unicode", with_tail=True) for child in element)
        assert content._inner_html(element) == expected


edge_spaces = st.text(st.sampled_from([" ", "\t", "\n", "\r", "\x0b", "\x0c", "\x1c", "\x85",
                                       "\xa0", "\u3000", "\u2028", "\ufeff", "a", "图"]),
                     max_size=4)


@SETTINGS
@given(before=edge_spaces, middle=st.text(max_size=40), after=edge_spaces,
       encoding=st.sampled_from(["utf-8", "utf-8-sig", "gb18030"]))
@example(before="\u3000", middle="正文", after="\xa0", encoding="utf-8")
@example(before=" \x1c", middle="x", after="\n\u2028", encoding="utf-8")
def test_content_hash_is_of_the_body_as_returned(before: str, middle: str, after: str,
                                                  encoding: str) -> None:
    """The first pass hashes a UTF-8 file's body from its bytes when it can: the hash
    must be that of the title, the authors and the body text it returns, whatever
    whitespace the body starts or ends with."""
    import hashlib

    head = (f"<!--1715830622000-->\n[Title]({URL})\n------\n<address>甲、乙</address>"
            "<time>2024年5月16日</time>")
    try:
        data = (head + before + middle + after).encode(encoding)
    except UnicodeEncodeError:
        assume(False)
    try:
        entry, body = read_entry(data, "x.txt", zone=ZONE, now=NOW)
    except ArticleError:
        return
    digest = hashlib.sha256()
    for part in (entry.title, *entry.authors, body):
        digest.update(part.encode("utf-8", "surrogatepass") + b"\0")
    assert entry.content_hash == digest.hexdigest()[:32]


@SETTINGS
@given(moment=st.datetimes(min_value=datetime(1900, 1, 1), max_value=datetime(9999, 1, 1),
                           timezones=st.sampled_from([UTC, ZONE, ZoneInfo("America/Chicago")])))
def test_rfc822_dates_are_what_email_utils_writes(moment: datetime) -> None:
    """render.common.rfc822 spares every build the email package's import: its dates must
    be exactly email.utils's, for any instant, whatever the zone it is given in."""
    from email.utils import format_datetime

    from syndicate.render.common import rfc822

    assert rfc822(moment) == format_datetime(moment.astimezone(UTC))


# --- merging captures, the ledger and the order (select.py) ---------------------------------
#
# Few URLs, instants and hashes, so that captures of one story, ties and unchanged content
# are common.
INSTANTS = [datetime(2024, 5, d, h, tzinfo=UTC) for d in (14, 16) for h in (0, 3)]


@st.composite
def captures(draw: Any) -> list[Entry]:
    count = draw(st.integers(0, 8))
    return [Entry(path=f"{n:02d}.txt", url=draw(st.sampled_from(["https://x.org/a/", "https://x.org/b/",
                                                                   "https://x.org/c/"])),
                  title="t", published=draw(st.sampled_from(INSTANTS)),
                  captured=draw(st.sampled_from(INSTANTS)), source_time=None, authors=(),
                  section="a", content_hash=draw(st.sampled_from(["h1", "h2"])),
                  disagreement=draw(st.sampled_from([None, f"far {n}"])))
            for n in draw(st.permutations(range(count)))]


@SETTINGS
@given(files=captures())
def test_captures_merge_as_merge_captures_says(files: list[Entry]) -> None:
    """One entry per URL, in the order the URLs first come: the text of the latest
    capture (by capture time, then path), `published` from the earliest, `updated` from
    the capture where the final content first appeared (never before `published`); a
    story captured once is left as it is. The earliest capture's disagreement warns."""
    merged = merge_captures(files)
    urls = list(dict.fromkeys(f.url for f in files))
    assert [m.url for m in merged.entries] == urls
    expected_warnings = []
    for url, got in zip(urls, merged.entries, strict=True):
        group = sorted((f for f in files if f.url == url), key=lambda f: (f.captured, f.path))
        if group[0].disagreement:
            expected_warnings.append((group[0].path, group[0].disagreement))
        if len(group) == 1:
            assert got is group[0]
            continue
        latest = group[-1]
        since = len(group) - 1
        while since > 0 and group[since - 1].content_hash == latest.content_hash:
            since -= 1
        published = min(f.published for f in group)
        assert got == replace(latest, published=published,
                              updated=max(group[since].captured, published))
    assert merged.warnings == expected_warnings


@SETTINGS
@given(files=captures(), told=st.dictionaries(
    st.sampled_from(["https://x.org/a/", "https://x.org/b/", "https://x.org/c/"]),
    st.builds(Stamp, st.sampled_from(["h1", "h2"]), st.sampled_from(INSTANTS),
              st.sampled_from(INSTANTS))))
def test_the_ledger_holds_dates_to_what_readers_were_told(files: list[Entry],
                                                         told: dict[str, Stamp]) -> None:
    """`published` never moves later than readers were told; `updated` stays while the
    content is what they saw (and is never before `published`). The entries returned as
    changed are exactly those whose hash and dates differ from the ledger's row."""
    stories = merge_captures(files).entries
    held, changed = apply_ledger(stories, told)
    assert [h.url for h in held] == [s.url for s in stories]
    for story, got in zip(stories, held, strict=True):
        before = told.get(story.url)
        if before is None:
            assert got is story
            continue
        published = min(story.published, before.published)
        updated = (before.updated if before.content_hash == story.content_hash
                   else story.updated or story.captured)
        assert (got.published, got.updated or got.captured) == (published, max(updated, published))
    assert changed == [h for h in held if told.get(h.url) != Stamp(
        h.content_hash, h.published, h.updated or h.captured)]


@SETTINGS
@given(files=captures())
def test_stories_are_ordered_newest_first_then_by_url(files: list[Entry]) -> None:
    stories = merge_captures(files).entries
    assert newest_first(stories) == sorted(stories, key=story_order)


@pytest.mark.parametrize("seed", sorted(SEEDS.glob("*.txt")), ids=lambda p: p.name)
def test_records_come_back_from_pickling_as_they_were(seed: Path) -> None:
    """Entries and articles cross processes and sit in the cache pickled, each through
    its own __reduce__ (a constructor call with its fields in order): what comes back
    must be the record that went, every field in its place."""
    import pickle

    try:
        parsed = parse_article(seed.read_bytes(), seed.name, zone=ZONE, now=NOW)
    except ArticleError:
        return  # a sample of a file the build skips
    for record in (parsed.entry, parsed.article, *parsed.article.images):
        back = pickle.loads(pickle.dumps(record, protocol=5))
        assert type(back) is type(record) and back == record
