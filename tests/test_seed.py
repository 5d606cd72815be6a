"""The seed article alone in a `world` channel, read back by feedparser and as JSON Feed:
dates, identity, author, and where each of its three images goes under each `images`
setting."""

from __future__ import annotations

from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from pathlib import Path

import pytest

from tests.conftest import SEED, read_feed, read_json_feed, run_cli

URL = "https://cn.nytimes.com/world/20240516/putin-xi-china-summit/"
PROXY = "https://images.weserv.nl/?url=static01.nyt.com/images/2024/05/16/multimedia/"
LEAD = PROXY + "16china-russia-wtk-vtqj/16china-russia-wtk-vtqj-master1050.jpg"
SECOND = PROXY + "16china-russia-wtk-ljtb/16china-russia-wtk-ljtb-master1050.jpg"
THIRD = PROXY + "16china-russia-wtk-lwkq/16china-russia-wtk-lwkq-master1050.jpg"
ALL_IMAGES = [LEAD, SECOND, THIRD]
INSTANT = datetime(2024, 5, 16, 3, 37, 2, tzinfo=UTC)
ENGLISH = "https://www.nytimes.com/2024/05/15/world/asia/putin-xi-china-summit.html"


@pytest.fixture(scope="module")
def feeds(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from tests.conftest import write_config

    folder = tmp_path_factory.mktemp("seed")
    (folder / "articles").mkdir()
    (folder / "articles" / SEED.name).write_bytes(SEED.read_bytes())
    channel = {"title": "国际", "link": "https://cn.nytimes.com/world/", "language": "zh-CN",
               "include": {"section": ["world"]}}
    config = write_config(folder, {
        "world": channel,
        "world-enclosure": {**channel, "images": "enclosure"},
        "world-both": {**channel, "images": "both"},
        "world-summary": {**channel, "content": "summary"},
    })
    result = run_cli("build", "-c", str(config))
    assert result.code == 0, result.err
    assert result.err == ""
    return folder / "feeds"


def test_rss_item_fields(feeds: Path) -> None:
    feed = read_feed(feeds / "world.xml")
    assert feed.version == "rss20"
    [item] = feed.entries
    assert item.title == "普京访华想从习近平那里得到什么"
    assert item.published == "Thu, 16 May 2024 03:37:02 +0000"
    assert parsedate_to_datetime(item.published) == INSTANT
    assert item.id == URL and item.link == URL
    assert item.author == "DAVID PIERSON"  # dc:creator
    assert [t.term for t in item.tags] == ["world"]
    assert item.summary.startswith("当中国最高领导人习近平在本周接待俄罗斯总统普京时")
    assert "点击查看本文英文版" not in item.summary  # the footer is not the summary
    assert feed.feed.updated == "Thu, 16 May 2024 03:37:02 +0000"  # lastBuildDate: newest item
    self_links = [link.href for link in feed.feed.links if link.rel == "self"]
    assert self_links == ["https://feeds.example.org/world.xml"]
    assert feed.feed.link == "https://cn.nytimes.com/world/"


def test_atom_entry_fields(feeds: Path) -> None:
    feed = read_feed(feeds / "world.atom")
    assert feed.version == "atom10"
    [entry] = feed.entries
    assert entry.id == URL
    assert entry.published == "2024-05-16T03:37:02Z"
    assert entry.updated == "2024-05-16T03:37:02Z"
    assert entry.author == "DAVID PIERSON"
    english = [link for link in entry.links if link.get("hreflang") == "en"]
    assert [(link.rel, link.href) for link in english] == [("alternate", ENGLISH)]
    assert entry.content[0].type == "text/html"


def test_json_item_fields(feeds: Path) -> None:
    feed = read_json_feed(feeds / "world.json")
    [item] = feed["items"]
    assert item["id"] == URL and item["url"] == URL
    assert item["date_published"] == "2024-05-16T03:37:02Z"
    assert item["authors"] == [{"name": "DAVID PIERSON"}]
    assert item["image"] == LEAD
    assert feed["feed_url"] == "https://feeds.example.org/world.json"


def _body(feeds: Path, channel: str) -> str:
    return str(read_feed(feeds / f"{channel}.xml").entries[0].content[0].value)


def _rss_media(feeds: Path, channel: str) -> tuple[list[str], list[str], list[str]]:
    item = read_feed(feeds / f"{channel}.xml").entries[0]
    enclosures = [e.href for e in item.enclosures]
    media = [m["url"] for m in item.get("media_content", [])]
    return enclosures, media, [t["url"] for t in item.get("media_thumbnail", [])]


def _atom_enclosures(feeds: Path, channel: str) -> list[tuple[str, str, str]]:
    entry = read_feed(feeds / f"{channel}.atom").entries[0]
    return [(link.href, link.type, link.length) for link in entry.links if link.rel == "enclosure"]


def test_images_inline_is_the_default(feeds: Path) -> None:
    """inline: all three images stay in the body; only the lead is an enclosure."""
    body = _body(feeds, "world")
    assert all(url in body for url in ALL_IMAGES)
    assert body.count(LEAD) == 1
    assert _rss_media(feeds, "world") == ([LEAD], [LEAD], [LEAD])
    assert _atom_enclosures(feeds, "world") == [(LEAD, "image/jpeg", "0")]
    item = read_json_feed(feeds / "world.json")["items"][0]
    assert [a["url"] for a in item["attachments"]] == [LEAD]


def test_images_enclosure(feeds: Path) -> None:
    """enclosure: every image leaves the body and travels beside it, in document order."""
    body = _body(feeds, "world-enclosure")
    assert not any(url in body for url in ALL_IMAGES)
    assert "<img" not in body and "<figure" not in body
    assert "两国领导人预计会表现出统一战线" in body  # the text stays
    assert _rss_media(feeds, "world-enclosure") == ([LEAD], ALL_IMAGES, [LEAD])
    assert _atom_enclosures(feeds, "world-enclosure") == [(u, "image/jpeg", "0") for u in ALL_IMAGES]
    item = read_json_feed(feeds / "world-enclosure.json")["items"][0]
    assert [(a["url"], a["mime_type"]) for a in item["attachments"]] == [
        (u, "image/jpeg") for u in ALL_IMAGES]


def test_images_both(feeds: Path) -> None:
    body = _body(feeds, "world-both")
    assert all(body.count(url) == 1 for url in ALL_IMAGES)
    assert _rss_media(feeds, "world-both") == ([LEAD], ALL_IMAGES, [LEAD])
    assert len(_atom_enclosures(feeds, "world-both")) == 3


def test_media_rss_caption_and_credit(feeds: Path) -> None:
    raw = (feeds / "world-enclosure.xml").read_text(encoding="utf-8")
    assert "<media:credit>Sergei Guneyev/Sputnik</media:credit>" in raw
    assert '<media:description type="plain">俄罗斯国家媒体提供的一张照片显示，2023年，俄罗斯总统普京' in raw
    assert 'width="1050" height="719"' in raw
    assert 'length="0"' in raw and "None" not in raw


def test_rss_enclosure_is_the_lead_image(feeds: Path) -> None:
    raw = (feeds / "world.xml").read_text(encoding="utf-8")
    assert f'<guid isPermaLink="true">{URL}</guid>' in raw
    assert f'<enclosure url="{LEAD.replace("&", "&amp;")}" length="0" type="image/jpeg"/>' in raw


def test_summary_channel_has_no_full_content(feeds: Path) -> None:
    item = read_feed(feeds / "world-summary.xml").entries[0]
    # feedparser files media:description under content too; no HTML body may be there
    assert all(c.type != "text/html" for c in item.get("content", []))
    assert item.summary.startswith("当中国最高领导人习近平")
    json_item = read_json_feed(feeds / "world-summary.json")["items"][0]
    assert "content_html" not in json_item and json_item["content_text"] == json_item["summary"]


def test_body_is_sanitized_and_absolute(feeds: Path) -> None:
    body = _body(feeds, "world")
    assert "style=" not in body and 'target="_blank"' not in body
    assert '<a href="https://x.com/mfa_russia/status/1790856664368746957">' in body
    # the scraped <p><img><small>caption</small></p> becomes a figure with a caption
    content_html = read_json_feed(feeds / "world.json")["items"][0]["content_html"]
    caption = "俄罗斯国家媒体提供的一张照片显示，2023年，习近平和普京"
    assert f'<figure><img src="{SECOND}"><figcaption>{caption}' in content_html
