"""The site pages: index.opml (read by listparser, a real OPML client), index.html and the
<id>.html previews (read as HTML and as XML), and the feeds' links to the previews.

Checked against the feeds themselves: every feed URL is in the OPML list and the front
page; counts, newest dates and items on the pages are those of the feeds; titles that
hold markup are shown as text; the pages are rebuilt only when what they show changes,
and a failed run leaves them as they were. (Rendering in a real browser, with images
and screenshots, is tests/test_browser.py.)"""

from __future__ import annotations

import json
import shutil
from dataclasses import replace
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any

import listparser
import lxml.etree
import lxml.html
import pytest
import yaml

from syndicate.config import load_config
from syndicate.model import Article, Channel, Image
from syndicate.render import html, opml
from syndicate.render.site import Listing
from tests.conftest import FIXTURES, ROOT, SEED, read_feed, run_cli, write_config

XHTML = "{http://www.w3.org/1999/xhtml}"
CONFIG = load_config(ROOT / "config.yaml")
FEED_SUFFIX = {"rss": ".xml", "atom": ".atom", "json": ".json"}


@pytest.fixture(scope="module")
def sample(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The repository's sample site (seeds/ and config.yaml) built into a fresh folder."""
    folder = tmp_path_factory.mktemp("sample")
    config = yaml.safe_load((ROOT / "config.yaml").read_text(encoding="utf-8"))
    config["site"].update(source=str(ROOT / "seeds"), output=str(folder / "feeds"),
                          cache=str(folder / "cache"))
    (folder / "config.yaml").write_text(yaml.safe_dump(config, allow_unicode=True, sort_keys=False),
                                        encoding="utf-8")
    result = run_cli("build", "-c", str(folder / "config.yaml"))
    assert result.code == 0, result.err
    return folder / "feeds"


def page(path: Path) -> Any:
    """A page parsed as HTML, after checking that it is also well-formed XML."""
    data = path.read_bytes()
    lxml.etree.fromstring(data)
    return lxml.html.document_fromstring(data)


def feed_items(feeds: Path, channel: Channel) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = json.loads((feeds / f"{channel.id}.json").read_text("utf-8"))["items"]
    return items


# --- index.opml ---------------------------------------------------------------------------------


def test_opml_lists_every_feed_for_a_real_client(sample: Path) -> None:
    parsed = listparser.parse((sample / "index.opml").read_bytes())
    assert not parsed.bozo, parsed.get("bozo_exception")
    assert parsed.meta.title == CONFIG.site.title
    expected = {CONFIG.site.feed_url(c.id, fmt) for c in CONFIG.channels for fmt in c.formats}
    assert {feed.url for feed in parsed.feeds} == expected
    assert len(parsed.feeds) == len(expected) == 11
    by_url = {feed.url: feed for feed in parsed.feeds}
    for channel in CONFIG.channels:
        for fmt in channel.formats:
            feed = by_url[CONFIG.site.feed_url(channel.id, fmt)]
            assert feed.title.startswith(channel.title)
            assert feed.categories == [[channel.title]]  # one folder per channel


def test_opml_outlines_carry_type_html_url_and_no_clock(sample: Path) -> None:
    root = lxml.etree.fromstring((sample / "index.opml").read_bytes())
    assert root.get("version") == "2.0"
    outlines = root.findall(".//outline[@xmlUrl]")
    channels = {CONFIG.site.feed_url(c.id, fmt): c for c in CONFIG.channels for fmt in c.formats}
    for outline in outlines:
        channel = channels[outline.get("xmlUrl")]
        assert outline.get("type") == "rss"
        assert outline.get("htmlUrl") == channel.link
        assert outline.get("language") == channel.language
        assert outline.get("version") == ("RSS" if outline.get("xmlUrl").endswith(".xml") else None)
    assert root.find("head/dateCreated") is None
    # dateModified is the newest item's time: the `all` channel's Atom <updated>, not now.
    modified = parsedate_to_datetime(root.findtext("head/dateModified"))
    assert modified == datetime.fromisoformat(read_feed(sample / "all.atom").feed.updated)


# --- index.html ---------------------------------------------------------------------------------


def test_front_page_has_autodiscovery_for_every_feed(sample: Path) -> None:
    doc = page(sample / "index.html")
    links = {(link.get("href"), link.get("type")): link.get("title")
             for link in doc.xpath("//head/link[@rel='alternate']")}
    types = {"rss": "application/rss+xml", "atom": "application/atom+xml",
             "json": "application/feed+json"}
    expected = {(f"{c.id}{FEED_SUFFIX[fmt]}", types[fmt]) for c in CONFIG.channels for fmt in c.formats}
    assert set(links) == expected
    for (href, _type), title in links.items():
        assert (sample / href).is_file()
        channel = next(c for c in CONFIG.channels if href.startswith(f"{c.id}."))
        assert title.startswith(channel.title)
    assert doc.findtext(".//title") == CONFIG.site.title
    assert doc.findtext(".//h1") == CONFIG.site.title


def test_front_page_shows_each_channel_with_counts_dates_and_subscribe_links(sample: Path) -> None:
    doc = page(sample / "index.html")
    for channel in CONFIG.channels:
        [card] = doc.xpath(f"//section[@id='channel-{channel.id}']")
        assert card.findtext(".//h2/a") == channel.title
        assert card.xpath(".//h2/a/@href") == [f"{channel.id}.html"]
        if channel.description != channel.title:
            assert channel.description in card.text_content()
        items = feed_items(sample, channel)
        meta = card.xpath(".//p[@class='meta']")[0].text_content()
        assert meta.startswith(f"{len(items)} 篇文章")  # the channel's language: zh-CN
        newest = datetime.fromisoformat(items[0]["date_published"].replace("Z", "+00:00"))
        [stamp] = card.xpath(".//time")
        assert datetime.fromisoformat(stamp.get("datetime")) == newest
        assert stamp.get("datetime").endswith("+08:00")  # shown in the site's zone
        anchors = card.xpath(".//nav[@class='feeds']/a")
        hrefs = [a.get("href") for a in anchors]
        assert hrefs == [f"{channel.id}{FEED_SUFFIX[fmt]}" for fmt in channel.formats] + [
            f"{channel.id}.html"]
        assert [a.text for a in anchors[:-1]] == [
            {"rss": "RSS", "atom": "Atom", "json": "JSON Feed"}[fmt] for fmt in channel.formats]
        for anchor in anchors[:-1]:  # the public URL, for pasting into a reader
            assert anchor.get("title") == CONFIG.site.base_url + anchor.get("href")
    assert doc.xpath("//a[@href='index.opml']")


def test_pages_are_static_and_self_contained(sample: Path) -> None:
    for path in sorted(sample.glob("*.html")):
        doc = page(path)
        assert not doc.xpath("//script | //iframe | //object | //embed"), path.name
        assert not [a for el in doc.iter() if isinstance(el.tag, str)
                    for a in el.attrib if a.startswith("on")], path.name
        assert not doc.xpath("//link[@rel='stylesheet']")  # the style is inline
        assert doc.xpath("//meta[@name='viewport']/@content") == [
            "width=device-width, initial-scale=1"]
        assert b"<?xml-stylesheet" not in path.read_bytes()
        assert doc.get("lang") == "zh-CN"


# --- <id>.html ----------------------------------------------------------------------------------


@pytest.mark.parametrize("channel", CONFIG.channels, ids=lambda c: c.id)
def test_preview_shows_the_feeds_items_in_order(sample: Path, channel: Channel) -> None:
    doc = page(sample / f"{channel.id}.html")
    items = feed_items(sample, channel)
    cards = doc.xpath("//article")
    assert [c.findtext(".//h2/a") for c in cards] == [i["title"] for i in items]
    assert [c.xpath(".//h2/a/@href")[0] for c in cards] == [i["url"] for i in items]
    for card, item in zip(cards, items, strict=True):
        if "summary" in item:
            assert card.xpath(".//p[@class='summary']")[0].text_content() == item["summary"]
        assert card.xpath(".//p[@class='more']/a/@href") == [item["url"]]
    # the page's own autodiscovery: this channel's feeds only
    assert sorted(doc.xpath("//head/link[@rel='alternate']/@href")) == sorted(
        f"{channel.id}{FEED_SUFFIX[fmt]}" for fmt in channel.formats)
    assert doc.xpath("//p[@class='crumb']/a/@href") == ["index.html"]


def test_preview_shows_date_in_language_and_zone_and_the_lead_image(sample: Path) -> None:
    doc = page(sample / "world.html")
    [card] = [c for c in doc.xpath("//article")
              if c.xpath(".//h2/a/@href") == ["https://cn.nytimes.com/world/20240516/putin-xi-china-summit/"]]
    [stamp] = card.xpath(".//time")
    # header 1715830622000 = 2024-05-16T03:37:02Z = 11:37 in Asia/Shanghai
    assert stamp.get("datetime") == "2024-05-16T11:37:02+08:00"
    assert stamp.text == "2024年5月16日 11:37"
    assert "DAVID PIERSON" in card.xpath(".//p[@class='meta']")[0].text_content()
    [img] = card.xpath(".//figure/img")
    assert img.get("src").endswith("16china-russia-wtk-vtqj-master1050.jpg")
    assert (img.get("width"), img.get("height")) == ("1050", "719")
    caption = card.xpath(".//figure/figcaption")[0]
    assert caption.text.startswith("俄罗斯国家媒体提供的一张照片显示")
    assert caption.findtext("cite") == "Sergei Guneyev/Sputnik"


# --- the feeds point to their preview -----------------------------------------------------------


def test_feeds_link_their_preview_as_related(sample: Path) -> None:
    for channel in CONFIG.channels:
        preview = f"{CONFIG.site.base_url}{channel.id}.html"
        for fmt in channel.formats:
            if fmt == "json":
                continue  # JSON Feed has no field for it
            parsed = read_feed(sample / f"{channel.id}{FEED_SUFFIX[fmt]}")
            related = [link for link in parsed.feed.links if link.rel == "related"]
            assert [(link.href, link.type) for link in related] == [(preview, "text/html")]
            assert parsed.feed.link == channel.link  # the alternate stays the channel's page


# --- hostile text -------------------------------------------------------------------------------

HOSTILE = '</title></h2><script>alert(1)</script> R&D "q" \'s\' ]]> <!-- <b>not bold</b> &amp;'


def _article(title: str, **changes: Any) -> Article:
    moment = datetime(2024, 5, 16, 3, 37, 2, tzinfo=UTC)
    image = Image(url='https://example.org/a.jpg?x="1"&y=<2>', mime="image/jpeg",
                  caption="<i>cap</i> & more", credit="<b>me</b>", lead=True)
    article = Article(url="https://cn.nytimes.com/world/20240516/x/?a=1&b=<2>", title=title,
                      published=moment, updated=moment, section="world",
                      authors=("<script>A</script>",), summary="<p>lead & <b>more</b></p>",
                      body_html="", body_html_without_images="", images=(image,))
    return replace(article, **changes)


def test_hostile_text_is_shown_as_text_everywhere() -> None:
    site = replace(CONFIG.site, title=f"site {HOSTILE}")
    channel = replace(CONFIG.channels[0], title=f"channel {HOSTILE}",
                      description=f"about {HOSTILE}", link="https://example.org/?a=1&b=2")
    article = _article(HOSTILE)
    listing = Listing(channel, 1, article.published, article.updated)
    for data in (html.render_index(site, [listing]), html.render_preview(site, listing, [article])):
        doc = page_from(data)
        assert not doc.xpath("//script | //b | //i")
        assert doc.findtext(".//title").endswith(HOSTILE)
        assert HOSTILE in doc.text_content()
    doc = page_from(html.render_preview(site, listing, [article]))
    card = doc.xpath("//article")[0]
    assert card.findtext(".//h2/a") == HOSTILE
    assert card.xpath(".//h2/a/@href") == [article.url]
    assert card.xpath(".//img/@src") == [article.images[0].url]
    assert card.xpath(".//p[@class='summary']")[0].text_content() == article.summary
    root = lxml.etree.fromstring(opml.render(site, [listing]))
    assert root.findtext("head/title") == site.title
    assert {o.get("text") for o in root.iter("outline")} >= {channel.title}


def page_from(data: bytes) -> Any:
    lxml.etree.fromstring(data)
    return lxml.html.document_fromstring(data)


def test_hostile_titles_from_the_messy_archive_render_as_text(tmp_path: Path) -> None:
    config = write_config(tmp_path, {"all": {"title": "All", "link": "https://cn.nytimes.com/",
                                             "limit": 1000}}, source=str(FIXTURES / "messy"))
    assert run_cli("build", "-c", str(config)).code == 0
    feeds = tmp_path / "feeds"
    items = json.loads((feeds / "all.json").read_text("utf-8"))["items"]
    doc = page(feeds / "all.html")
    assert [c.findtext(".//h2/a") for c in doc.xpath("//article")] == [i["title"] for i in items]
    assert any("<" in i["title"] or "&" in i["title"] for i in items)  # the case is there
    assert not doc.xpath("//article//h2//*[not(self::a)]")  # no markup came from a title


# --- words, dates, empty channels ---------------------------------------------------------------


@pytest.mark.parametrize(("language", "subscribe", "date"), [
    ("en", "Subscribe", "16 May 2024, 11:37"),
    ("zh-CN", "订阅", "2024年5月16日 11:37"),
    ("zh-TW", "訂閱", "2024年5月16日 11:37"),
    ("zh-Hant-HK", "訂閱", "2024年5月16日 11:37"),
    ("fr", "Subscribe", "2024-05-16 11:37"),
    (None, "Subscribe", "16 May 2024, 11:37"),
])
def test_words_and_dates_follow_the_channel_language(language: str | None, subscribe: str,
                                                      date: str) -> None:
    channel = replace(CONFIG.channels[0], language=language)
    article = _article("Title")
    listing = Listing(channel, 1, article.published, article.updated)
    doc = page_from(html.render_preview(CONFIG.site, listing, [article]))
    assert doc.findtext(".//nav/span") == subscribe
    assert doc.xpath("//article//time")[0].text == date
    assert doc.get("lang") == language


def test_empty_channel_renders_without_dates() -> None:
    channel = CONFIG.channels[0]
    listing = Listing(channel, 0, None, None)
    doc = page_from(html.render_preview(CONFIG.site, listing, []))
    assert doc.xpath("//p[@class='empty']")
    assert not doc.xpath("//time")
    index = page_from(html.render_index(CONFIG.site, [listing]))
    assert index.xpath("//section//p[@class='meta']")[0].text_content() == "0 篇文章"
    root = lxml.etree.fromstring(opml.render(CONFIG.site, [listing]))
    assert root.find("head/dateModified") is None


def test_front_page_uses_english_when_channels_differ_in_language() -> None:
    listings = [Listing(replace(CONFIG.channels[0], language="zh-CN"), 0, None, None),
                Listing(replace(CONFIG.channels[1], language="en"), 0, None, None)]
    doc = page_from(html.render_index(CONFIG.site, listings))
    assert doc.get("lang") is None
    assert doc.findtext(".//nav/span") == "Subscribe"


def test_rendering_is_deterministic() -> None:
    article = _article("Title")
    listing = Listing(CONFIG.channels[0], 1, article.published, article.updated)
    first = html.render_preview(CONFIG.site, listing, [article])
    site_copy = replace(CONFIG.site)
    assert html.render_preview(site_copy, listing, [article]) == first
    assert opml.render(CONFIG.site, [listing]) == opml.render(site_copy, [listing])


# --- written like the feeds ---------------------------------------------------------------------


def test_pages_are_rewritten_only_when_what_they_show_changes(tmp_path: Path) -> None:
    (tmp_path / "articles").mkdir()
    shutil.copy(SEED, tmp_path / "articles" / "seed.txt")
    config = write_config(tmp_path, {
        "world": {"title": "World", "link": "https://cn.nytimes.com/world/",
                  "include": {"section": "world"}},
        "china": {"title": "China", "link": "https://cn.nytimes.com/china/",
                  "include": {"section": "china"}},
    })
    assert run_cli("build", "-c", str(config)).code == 0
    feeds = tmp_path / "feeds"

    def mtimes() -> dict[str, int]:
        return {p.name: p.stat().st_mtime_ns for p in feeds.iterdir()}

    before = mtimes()
    assert run_cli("build", "-c", str(config)).code == 0
    assert mtimes() == before
    assert run_cli("build", "--no-cache", "-c", str(config)).code == 0  # rendered, same bytes
    assert mtimes() == before
    story = SEED.read_text(encoding="utf-8").replace("putin-xi-china-summit", "another-story")
    story = story.replace("1715830622000", "1715840622000")
    (tmp_path / "articles" / "another.txt").write_text(story, encoding="utf-8")
    assert run_cli("build", "-c", str(config)).code == 0
    after = mtimes()
    changed = sorted(name for name in after if after[name] != before[name])
    assert changed == ["index.html", "index.opml", "world.atom", "world.html", "world.json",
                       "world.xml"]
    assert page(feeds / "index.html").xpath(
        "//section[@id='channel-world']//p[@class='meta']")[0].text_content().startswith("2 ")


def test_a_failed_run_leaves_the_pages_as_they_were(tmp_path: Path) -> None:
    """When the feeds are kept (here: the source was emptied, which looks like lost
    articles), the pages that describe them are kept too."""
    (tmp_path / "articles").mkdir()
    shutil.copy(SEED, tmp_path / "articles" / "seed.txt")
    config = write_config(tmp_path, {"all": {"title": "All", "link": "https://cn.nytimes.com/"}})
    assert run_cli("build", "-c", str(config)).code == 0
    feeds = tmp_path / "feeds"
    pages = {p.name: p.read_bytes() for p in feeds.iterdir() if p.suffix in (".html", ".opml")}
    assert sorted(pages) == ["all.html", "index.html", "index.opml"]
    (tmp_path / "articles" / "seed.txt").unlink()
    result = run_cli("build", "-c", str(config))
    assert result.code == 4, result.err
    assert {p.name: p.read_bytes() for p in feeds.iterdir() if p.suffix in (".html", ".opml")} == pages
