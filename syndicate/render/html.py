"""The front page (index.html) and each channel's preview page (<id>.html).

Static pages any browser shows: no JavaScript, no XSLT (browsers are dropping it), the
style inline, readable on a phone. Each page is built as an lxml tree, so every title,
caption and URL from the archive goes through the serializer's escaping; no text is
pasted into markup. The serialization is polyglot markup: HTML5 that is also
well-formed XML (void elements self-closed, no other element left empty-closed, a
style sheet without `<`, `>` or `&`), so the build can parse each page back before
writing it, as it does the feeds.

No clock: dates come from the items, shown in the site's time zone and in the words of
the channel's language (the front page uses the channels' language when they share one).
"""

from __future__ import annotations

import zoneinfo
from collections.abc import Sequence
from datetime import datetime, tzinfo
from typing import Any

import lxml.etree

from syndicate import __version__
from syndicate.model import Article, Site
from syndicate.render.site import FeedLink, Listing, feed_links, preview_href

XHTML = "http://www.w3.org/1999/xhtml"
_NSMAP: Any = {None: XHTML}  # the default namespace (the stubs do not allow a None prefix)
VOID = {"meta", "link", "img", "br", "hr"}
BLOCKS = {"head", "body", "meta", "link", "title", "style", "header", "main", "footer", "section",
          "article", "h1", "h2", "p", "nav", "figure", "div"}
CONTAINERS = {"html", "head", "body", "header", "main", "footer", "section", "article", "div"}
EAGER_IMAGES = 3  # the first items' images load at once (they are on screen); later ones lazily

CSS = """
:root{color-scheme:light dark;--bg:#f6f5f1;--card:#fff;--fg:#1f2328;--muted:#5f6670;
--line:#e2ded5;--accent:#a4161a;--rss:#c2410c;--atom:#15803d;--json:#1d4ed8}
@media (prefers-color-scheme:dark){:root{--bg:#121212;--card:#1c1c1e;--fg:#e8e6e3;
--muted:#a1a1a6;--line:#303034;--accent:#ff7b72;--rss:#fb923c;--atom:#4ade80;--json:#7cb4ff}}
*{box-sizing:border-box}
html{-webkit-text-size-adjust:100%;text-size-adjust:100%}
body{margin:0;background:var(--bg);color:var(--fg);overflow-wrap:anywhere;
font:16px/1.7 system-ui,-apple-system,"Segoe UI",Roboto,"PingFang SC","Hiragino Sans GB",
"Microsoft YaHei","Noto Sans CJK SC","WenQuanYi Zen Hei",sans-serif}
a{color:var(--accent)}
.page{max-width:46rem;margin:0 auto;padding:1.25rem 1rem 2.5rem}
.top{margin:0 0 1.25rem}
.crumb{margin:0;font-size:.9rem}
h1{font-size:1.6rem;line-height:1.3;margin:.25rem 0 .35rem}
.lede{margin:0 0 .35rem;color:var(--muted)}
.meta{margin:.2rem 0;color:var(--muted);font-size:.875rem}
.meta a{color:inherit}
.card{background:var(--card);border:1px solid var(--line);border-radius:12px;
padding:1rem 1.1rem;margin:0 0 1rem}
.card h2{font-size:1.15rem;line-height:1.45;margin:0 0 .25rem}
.card h2 a{color:inherit;text-decoration:none}
.card h2 a:hover,.card h2 a:focus{text-decoration:underline}
.feeds{display:flex;flex-wrap:wrap;align-items:center;gap:.4rem;margin:.65rem 0 0}
.feeds .label{color:var(--muted);font-size:.85rem;margin-right:.1rem}
.feeds a{display:inline-block;padding:.1rem .75rem;border:1px solid currentColor;
border-radius:999px;font-size:.85rem;font-weight:600;text-decoration:none;line-height:1.6}
.feeds a:hover,.feeds a:focus{background:var(--bg)}
.feeds .rss{color:var(--rss)}
.feeds .atom{color:var(--atom)}
.feeds .json{color:var(--json)}
.feeds .preview{color:var(--fg);border-style:dashed}
figure{margin:.75rem 0}
figure img{display:block;width:100%;height:auto;border-radius:8px;background:var(--line)}
figcaption{margin-top:.4rem;color:var(--muted);font-size:.8rem;line-height:1.5}
figcaption cite{font-style:normal;opacity:.8}
.summary{margin:.5rem 0}
.more{margin:.25rem 0 0;font-size:.9rem}
.empty{color:var(--muted)}
.bottom{margin-top:2rem;padding-top:1rem;border-top:1px solid var(--line);color:var(--muted);
font-size:.8rem}
@media (min-width:40rem){.page{padding:2.5rem 1.5rem 3rem}h1{font-size:2rem}
.card{padding:1.25rem 1.5rem}.card h2{font-size:1.3rem}}
""".strip()

WORDS: dict[str, dict[str, str]] = {
    "en": {"subscribe": "Subscribe", "preview": "Preview", "website": "Website",
           "read": "Read the article →", "opml": "All feeds (OPML)", "items": "{n} items",
           "item": "1 item", "newest": "newest {date}", "empty": "No items yet.",
           "zone": "Times in {zone}", "channels": "{n} channels", "channel": "1 channel",
           "made": "Made by syndicate"},
    "zh-Hans": {"subscribe": "订阅", "preview": "预览", "website": "网站", "read": "阅读全文 →",
                "opml": "全部订阅源（OPML）", "items": "{n} 篇文章", "item": "1 篇文章",
                "newest": "最新：{date}", "empty": "暂无文章。", "zone": "时区：{zone}",
                "channels": "{n} 个频道", "channel": "1 个频道", "made": "由 syndicate 生成"},
    "zh-Hant": {"subscribe": "訂閱", "preview": "預覽", "website": "網站", "read": "閱讀全文 →",
                "opml": "全部訂閱源（OPML）", "items": "{n} 篇文章", "item": "1 篇文章",
                "newest": "最新：{date}", "empty": "暫無文章。", "zone": "時區：{zone}",
                "channels": "{n} 個頻道", "channel": "1 個頻道", "made": "由 syndicate 產生"},
}
MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_SEP = " · "


def render_index(site: Site, listings: Sequence[Listing]) -> bytes:
    """The front page: every channel with its description, item count, newest date and
    subscribe links, and an autodiscovery link for every feed."""
    languages = {listing.channel.language for listing in listings}
    language = languages.pop() if len(languages) == 1 else None
    words = _words(language)
    zone = zoneinfo.ZoneInfo(site.timezone)
    links = [link for listing in listings for link in _discovery(site, listing)]
    count = len(listings)
    header = el("header",
        el("h1", site.title),
        el("p", {"class": "meta"}, *_joined([
            words["channel"] if count == 1 else words["channels"].format(n=count),
            words["zone"].format(zone=site.timezone),
            el("a", words["opml"], href="index.opml", type="text/x-opml"),
        ])),
        {"class": "top"},
    )
    cards = [_channel_card(site, listing, words, language, zone) for listing in listings]
    return _page(language, site.title, links, header, cards, words, site)


def render_preview(site: Site, listing: Listing, items: Sequence[Article]) -> bytes:
    """A channel's items as a reader shows them: title, date, lead image with caption,
    summary and link; with the channel's subscribe links and autodiscovery."""
    channel = listing.channel
    words = _words(channel.language)
    zone = zoneinfo.ZoneInfo(site.timezone)
    header = el("header",
        {"class": "top"},
        el("p", {"class": "crumb"}, el("a", site.title, href="index.html")),
        el("h1", channel.title),
        *([el("p", {"class": "lede"}, channel.description)] if channel.description != channel.title
          else []),
        el("p", {"class": "meta"}, *_joined([*_counts(listing, words, channel.language, zone),
                                         el("a", words["website"], href=channel.link)])),
        _subscribe(site, listing, words, preview=False),
    )
    cards = [_item_card(article, n, words, channel.language, zone)
             for n, article in enumerate(items)]
    if not cards:
        cards = [el("p", {"class": "empty"}, words["empty"])]
    title = f"{channel.title}{_SEP}{site.title}" if channel.title != site.title else site.title
    return _page(channel.language, title, _discovery(site, listing), header, cards, words, site)


def el(tag: str, *children: str | lxml.etree._Element | dict[str, str],
       **attributes: str) -> lxml.etree._Element:
    """An XHTML element: text, child elements and attribute dicts in any order (a dict
    for names that are Python keywords, such as `class`). lxml escapes all of it."""
    element = lxml.etree.Element(f"{{{XHTML}}}{tag}", nsmap=_NSMAP)
    for name, value in attributes.items():
        element.set(name, value)
    for child in children:
        if isinstance(child, dict):
            for name, value in child.items():
                element.set(name, value)
        elif isinstance(child, str):
            if len(element):
                element[-1].tail = (element[-1].tail or "") + child
            else:
                element.text = (element.text or "") + child
        else:
            element.append(child)
    return element


# --- parts ------------------------------------------------------------------------------------

def _page(language: str | None, title: str, links: Sequence[lxml.etree._Element],
          header: lxml.etree._Element, cards: Sequence[lxml.etree._Element],
          words: dict[str, str], site: Site) -> bytes:
    assert not set("<>&") & set(CSS), "the style sheet must stay well-formed XML text"
    head = el("head",
        el("meta", charset="utf-8"),
        el("meta", name="viewport", content="width=device-width, initial-scale=1"),
        el("meta", name="generator", content=f"syndicate {__version__}"),
        el("title", title),
        *links,
        el("style", CSS),
    )
    footer = el("footer", {"class": "bottom"}, el("p", *_joined([
        words["zone"].format(zone=site.timezone), words["made"]])))
    body = el("body", el("div", {"class": "page"}, header, el("main", *cards), footer))
    root = el("html", head, body)
    if language:
        root.set("lang", language)
    _tidy(root)
    data: bytes = lxml.etree.tostring(root, doctype="<!DOCTYPE html>", encoding="UTF-8",
                                      xml_declaration=False)
    return data + b"\n"


def _discovery(site: Site, listing: Listing) -> list[lxml.etree._Element]:
    """`<link rel="alternate">` for each feed: how browsers and readers find them."""
    return [el("link", rel="alternate", type=link.mime, href=link.href,
                   title=f"{listing.channel.title} ({link.label})")
            for link in feed_links(site, listing.channel)]


def _channel_card(site: Site, listing: Listing, words: dict[str, str], language: str | None,
                  zone: tzinfo) -> lxml.etree._Element:
    channel = listing.channel
    return el("section",
        {"class": "card channel", "id": f"channel-{channel.id}"},
        el("h2", el("a", channel.title, href=preview_href(channel))),
        *([el("p", {"class": "lede"}, channel.description)] if channel.description != channel.title
          else []),
        el("p", {"class": "meta"}, *_joined(_counts(listing, words, language, zone))),
        _subscribe(site, listing, words, preview=True),
    )


def _counts(listing: Listing, words: dict[str, str], language: str | None,
            zone: tzinfo) -> list[Any]:
    parts: list[Any] = [words["item"] if listing.items == 1
                        else words["items"].format(n=listing.items)]
    if listing.newest is not None:
        before, _, after = words["newest"].partition("{date}")
        parts.append(el("span", before, _time(listing.newest, language, zone), after))
    return parts


def _subscribe(site: Site, listing: Listing, words: dict[str, str],
               preview: bool) -> lxml.etree._Element:
    nav = el("nav", {"class": "feeds", "aria-label": words["subscribe"]},
                el("span", {"class": "label"}, words["subscribe"]))
    for link in feed_links(site, listing.channel):
        nav.append(_feed_anchor(link))
    if preview:
        nav.append(el("a", {"class": "preview"}, words["preview"], href=preview_href(listing.channel)))
    return nav


def _feed_anchor(link: FeedLink) -> lxml.etree._Element:
    # The public URL in the tooltip: what to paste into a reader that asks for one.
    return el("a", {"class": link.fmt}, link.label, href=link.href, type=link.mime, title=link.url)


def _item_card(article: Article, n: int, words: dict[str, str], language: str | None,
               zone: tzinfo) -> lxml.etree._Element:
    meta: list[Any] = [_time(article.published, language, zone)]
    if article.authors:
        meta.append(article.author)
    if article.section:
        meta.append(article.section)
    card = el("article", {"class": "card item"},
                     el("h2", el("a", article.title, href=article.url)),
                     el("p", {"class": "meta"}, *_joined(meta)))
    lead = article.lead_image
    if lead is not None:
        # alt="": the caption is shown (and read) right below; saying it twice helps nobody.
        img = el("img", src=lead.url, alt="")
        if lead.width and lead.height:
            img.set("width", str(lead.width))
            img.set("height", str(lead.height))
        if n >= EAGER_IMAGES:
            img.set("loading", "lazy")
        figure = el("figure", img)
        if lead.caption or lead.credit:
            caption = el("figcaption", lead.caption)
            if lead.credit:
                caption.append(el("cite", lead.credit))
                if lead.caption:
                    caption.text = f"{lead.caption} "
            figure.append(caption)
        card.append(figure)
    if article.summary:
        card.append(el("p", {"class": "summary"}, article.summary))
    card.append(el("p", {"class": "more"}, el("a", words["read"], href=article.url)))
    return card


def _time(moment: datetime, language: str | None, zone: tzinfo) -> lxml.etree._Element:
    local = moment.astimezone(zone)
    return el("time", local_date(local, language), datetime=local.isoformat())


def local_date(local: datetime, language: str | None) -> str:
    """A date and time as a reader in `language` writes it; locale-independent."""
    base = (language or "en").split("-")[0].lower()
    clock = f"{local.hour:02d}:{local.minute:02d}"
    if base in ("zh", "ja"):
        return f"{local.year}年{local.month}月{local.day}日 {clock}"
    if base == "ko":
        return f"{local.year}년 {local.month}월 {local.day}일 {clock}"
    if base == "en":
        return f"{local.day} {MONTHS[local.month - 1]} {local.year}, {clock}"
    return f"{local.year:04d}-{local.month:02d}-{local.day:02d} {clock}"


def _words(language: str | None) -> dict[str, str]:
    tags = (language or "").lower().split("-")
    if tags[0] != "zh":
        return WORDS["en"]
    traditional = any(tag in ("hant", "tw", "hk", "mo") for tag in tags[1:])
    return WORDS["zh-Hant" if traditional else "zh-Hans"]


def _joined(parts: Sequence[Any]) -> list[Any]:
    """Text and elements separated by ' · ', ready to be an element's children."""
    out: list[Any] = []
    for n, part in enumerate(parts):
        if n:
            out.append(_SEP)
        out.append(part)
    return out


def _tidy(root: lxml.etree._Element) -> None:
    """Make the tree polyglot and its source readable: an empty non-void element gets
    an explicit end tag (`<a/>` would open an element in HTML), and block elements
    each start a line."""
    for element in root.iter(lxml.etree.Element):
        # The local name from the tag's text ("{namespace}name"): a QName object per
        # element took 13 ms of a cold 10k build's 13 pages (100 ms in all).
        name = element.tag.rpartition("}")[2]
        if name not in VOID and element.text is None and len(element) == 0:
            element.text = ""
        if name in CONTAINERS and len(element) and not (element.text or "").strip():
            element.text = "\n"
        if name in BLOCKS and not (element.tail or "").strip():
            element.tail = "\n"
