"""RFC 5005 archives (`archive: monthly`): a document per month before the channel's
newest item's month, in each of the channel's formats, chained with prev-archive from
the subscription feed down to the first month, together holding every article once;
and past months that stay byte for byte (and mtime for mtime) as they are until one of
their own articles changes."""

from __future__ import annotations

import os
import shutil
import subprocess
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import lxml.etree
import pytest
import yaml

from syndicate import pipeline as build_module
from syndicate.build import build
from syndicate.config import load_config
from tests.conftest import read_feed, read_json_feed, run_cli, write_config

BASE = "https://feeds.example.org/"
ATOM = "http://www.w3.org/2005/Atom"
FH = "http://purl.org/syndication/history/1.0"
SHANGHAI = ZoneInfo("Asia/Shanghai")
SUFFIX = {"rss": ".xml", "atom": ".atom", "json": ".json"}
VALIDATOR = os.environ.get("SYNDICATE_FEEDVALIDATOR", "")


def story(n: int, when: datetime, body: str = "") -> str:
    """An article in the seed's format, captured at `when` (UTC)."""
    local = when.astimezone(SHANGHAI)
    return (f"<!--{int(when.timestamp() * 1000)}-->\n"
            f"[第{n}篇报道](https://cn.nytimes.com/world/{local:%Y%m%d}/story-{n}/)\n------\n\n"
            f"<address>REPORTER</address><time datetime=\"{local:%Y-%m-%d %H:%M:%S}\">"
            f"{local:%Y-%m-%d}</time><figure><img src=\"https://static01.nyt.com/images/{n}.jpg\" "
            f"width=\"800\" height=\"600\"><figcaption>图{n}</figcaption></figure>"
            f"<section><p>第{n}篇文章的第一段。{body}</p><p>第二段。</p></section>")


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


# Months are the site's (Asia/Shanghai, UTC+8): 2024-02-29T17:00Z is already 1 March.
STORIES = {
    1: utc(2024, 2, 3, 4), 2: utc(2024, 2, 15, 9), 3: utc(2024, 2, 29, 15),  # February
    4: utc(2024, 2, 29, 17), 5: utc(2024, 3, 10, 2), 6: utc(2024, 3, 20, 8),
    7: utc(2024, 3, 31, 15, 30),  # March
    8: utc(2024, 3, 31, 16, 30), 9: utc(2024, 4, 5, 6),  # April: the current month
}
MONTHS = {"2024-02": {1, 2, 3}, "2024-03": {4, 5, 6, 7}}
CHANNEL = {"title": "Archive", "link": "https://cn.nytimes.com/world/", "limit": 3,
           "archive": "monthly"}


def url_of(n: int) -> str:
    return f"https://cn.nytimes.com/world/{STORIES[n].astimezone(SHANGHAI):%Y%m%d}/story-{n}/"


def make_site(folder: Path, stories: dict[int, datetime] = STORIES, **channel: Any) -> Path:
    articles = folder / "articles"
    articles.mkdir(parents=True, exist_ok=True)
    for n, when in stories.items():
        (articles / f"{n:03d}.txt").write_text(story(n, when), encoding="utf-8")
    return write_config(folder, {"all": {**CHANNEL, **channel}})


def links(path: Path) -> dict[str, str]:
    """rel → href of a document's feed-level links (JSON: next_url as prev-archive)."""
    if path.suffix == ".json":
        feed = read_json_feed(path)
        found = {"current": feed["feed_url"]}
        if "next_url" in feed:
            found["prev-archive"] = feed["next_url"]
        return found
    root = lxml.etree.parse(str(path)).getroot()
    head = root.find("channel") if root.tag == "rss" else root
    assert head is not None
    return {str(link.get("rel")): str(link.get("href")) for link in head.iterchildren(f"{{{ATOM}}}link")}


def item_ids(path: Path) -> list[str]:
    if path.suffix == ".json":
        return [item["id"] for item in read_json_feed(path)["items"]]
    return [entry.id for entry in read_feed(path).entries]


def walk(feeds: Path, fmt: str) -> list[Path]:
    """The archive documents reached from the subscription feed through prev-archive."""
    seen: list[Path] = []
    here = feeds / f"all{SUFFIX[fmt]}"
    while "prev-archive" in links(here):
        url = links(here)["prev-archive"]
        assert url.startswith(BASE)
        here = feeds / url.removeprefix(BASE)
        assert here not in seen, "the chain loops"
        seen.append(here)
    return seen


def snapshot(folder: Path) -> dict[str, tuple[bytes, int]]:
    return {p.relative_to(folder).as_posix(): (p.read_bytes(), p.stat().st_mtime_ns)
            for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("archives")
    result = run_cli("build", "-v", "-c", str(make_site(folder)))
    assert result.code == 0, result.err
    assert "6 archive documents (6 written)" in result.out
    return folder / "feeds"


def test_one_document_per_past_month_and_format(built: Path) -> None:
    names = sorted(p.relative_to(built).as_posix() for p in (built / "all").iterdir())
    assert names == [f"all/{month}{suffix}" for month in sorted(MONTHS)
                     for suffix in (".atom", ".json", ".xml")]
    # the current month (April) is the subscription feed's, and is no archive yet


@pytest.mark.parametrize("fmt", ["rss", "atom", "json"])
def test_the_chain_runs_from_the_feed_to_the_first_month(built: Path, fmt: str) -> None:
    suffix = SUFFIX[fmt]
    chain = walk(built, fmt)
    assert [p.name for p in chain] == [f"2024-03{suffix}", f"2024-02{suffix}"]
    for path in chain:
        found = links(path)
        assert found["current"] == f"{BASE}all{suffix}"
        if fmt != "json":
            assert found["self"] == BASE + path.relative_to(built).as_posix()
    if fmt != "json":  # forward too: February → March; March is the newest, nothing after it
        assert links(chain[1])["next-archive"] == f"{BASE}all/2024-03{suffix}"
        assert "next-archive" not in links(chain[0])
        assert "next-archive" not in links(built / f"all{suffix}")


@pytest.mark.parametrize("fmt", ["rss", "atom"])
def test_archives_are_marked_and_carry_no_hub(built: Path, fmt: str) -> None:
    for month in MONTHS:
        root = lxml.etree.parse(str(built / "all" / f"{month}{SUFFIX[fmt]}")).getroot()
        head = root.find("channel") if fmt == "rss" else root
        assert head is not None
        assert head.find(f"{{{FH}}}archive") is not None
        assert "hub" not in links(built / "all" / f"{month}{SUFFIX[fmt]}")
        assert root.find(".//ttl") is None  # nothing to poll
    subscription = lxml.etree.parse(str(built / f"all{SUFFIX[fmt]}")).getroot()
    assert subscription.find(f".//{{{FH}}}archive") is None
    if fmt == "atom":  # one logical feed: the archives share the subscription feed's id
        assert root.findtext(f"{{{ATOM}}}id") == subscription.findtext(f"{{{ATOM}}}id")


def test_json_archives_say_so_in_an_extension(built: Path) -> None:
    for month in MONTHS:
        feed = read_json_feed(built / "all" / f"{month}.json")
        assert feed["_rfc5005"]["archive"] is True
        assert feed["feed_url"] == f"{BASE}all.json"
        assert "hubs" not in feed
    assert "_rfc5005" not in read_json_feed(built / "all.json")


@pytest.mark.parametrize("fmt", ["rss", "atom", "json"])
def test_together_they_hold_every_article_exactly_once(built: Path, fmt: str) -> None:
    archived: list[str] = []
    for path in walk(built, fmt):
        ids = item_ids(path)
        assert set(ids) == {url_of(n) for n in MONTHS[path.stem]}, path.name
        archived.extend(ids)
    assert len(archived) == len(set(archived)) == 7
    current = item_ids(built / f"all{SUFFIX[fmt]}")
    assert current == [url_of(9), url_of(8), url_of(7)]  # limit 3, newest first
    assert set(archived) | set(current) == {url_of(n) for n in STORIES}


@pytest.mark.skipif(not VALIDATOR or not shutil.which(VALIDATOR),
                    reason="W3C feed validator not available: set SYNDICATE_FEEDVALIDATOR "
                           "(docs/validating.md)")
def test_archives_pass_the_w3c_validator(built: Path, tmp_path: Path) -> None:
    split = tmp_path / "split"
    assert run_cli("build", "-c", str(make_site(split, max_bytes=3000))).code == 0
    args: list[str] = []
    for feeds in (built, split / "feeds"):
        for path in sorted(feeds.rglob("*")):
            if path.suffix in (".xml", ".atom"):
                args += ["--url", BASE + path.relative_to(feeds).as_posix(), str(path)]
    assert len(args) > 30
    proc = subprocess.run([VALIDATOR, *args], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_an_unchanged_rebuild_touches_no_archive(tmp_path: Path) -> None:
    config = make_site(tmp_path)
    assert run_cli("build", "-c", str(config)).code == 0
    before = snapshot(tmp_path / "feeds")
    result = run_cli("build", "-v", "-c", str(config))
    assert result.code == 0 and "6 archive documents (0 written)" in result.out
    assert snapshot(tmp_path / "feeds") == before
    # and a build without the cache makes the very same bytes
    result = run_cli("build", "-v", "--no-cache", "-c", str(config))
    assert result.code == 0 and "(0 written)" in result.out and " 0 written, " in result.out
    assert snapshot(tmp_path / "feeds") == before


def test_news_in_the_current_month_leaves_past_months_alone(tmp_path: Path) -> None:
    config = make_site(tmp_path)
    assert run_cli("build", "-c", str(config)).code == 0
    before = snapshot(tmp_path / "feeds")
    (tmp_path / "articles" / "010.txt").write_text(story(10, utc(2024, 4, 9)), encoding="utf-8")
    assert run_cli("build", "-c", str(config)).code == 0
    after = snapshot(tmp_path / "feeds")
    assert {k: v for k, v in after.items() if k.startswith("all/")} == \
        {k: v for k, v in before.items() if k.startswith("all/")}
    assert after["all.xml"] != before["all.xml"]


def test_a_new_month_archives_the_last_one(tmp_path: Path) -> None:
    config = make_site(tmp_path)
    assert run_cli("build", "-c", str(config)).code == 0
    before = snapshot(tmp_path / "feeds")
    (tmp_path / "articles" / "010.txt").write_text(story(10, utc(2024, 5, 2)), encoding="utf-8")
    assert run_cli("build", "-c", str(config)).code == 0
    after = snapshot(tmp_path / "feeds")
    for suffix in (".xml", ".atom", ".json"):
        assert f"all/2024-04{suffix}" in after  # April is complete now
        assert after[f"all/2024-02{suffix}"] == before[f"all/2024-02{suffix}"]
    # March gains its next-archive link (RSS, Atom), the one change a past month gets that
    # is not its own; its items stay, and JSON (which has no such link) stays as it was
    assert after["all/2024-03.json"] == before["all/2024-03.json"]
    for suffix in (".xml", ".atom"):
        assert links(tmp_path / "feeds" / "all" / f"2024-03{suffix}")["next-archive"] == \
            f"{BASE}all/2024-04{suffix}"
        assert item_ids(tmp_path / "feeds" / "all" / f"2024-03{suffix}") == \
            [url_of(n) for n in (7, 6, 5, 4)]
    assert [p.stem for p in walk(tmp_path / "feeds", "atom")] == ["2024-04", "2024-03", "2024-02"]


def test_an_edited_article_rewrites_its_month_only(tmp_path: Path) -> None:
    config = make_site(tmp_path)
    assert run_cli("build", "-c", str(config)).code == 0
    before = snapshot(tmp_path / "feeds")
    (tmp_path / "articles" / "002.txt").write_text(story(2, STORIES[2], body="更正。"), encoding="utf-8")
    assert run_cli("build", "-c", str(config)).code == 0
    after = snapshot(tmp_path / "feeds")
    for suffix in (".xml", ".atom", ".json"):
        assert after[f"all/2024-02{suffix}"][0] != before[f"all/2024-02{suffix}"][0]
        assert after[f"all/2024-03{suffix}"] == before[f"all/2024-03{suffix}"]
    assert "更正" in (tmp_path / "feeds" / "all" / "2024-02.xml").read_text(encoding="utf-8")


def test_a_month_too_large_for_max_bytes_is_split_into_parts(tmp_path: Path) -> None:
    config = make_site(tmp_path, max_bytes=3000)
    assert run_cli("build", "-c", str(config)).code == 0
    for fmt, suffix in SUFFIX.items():
        chain = walk(tmp_path / "feeds", fmt)
        assert len(chain) > 2, [p.name for p in chain]
        assert chain[0].name == f"2024-03{suffix}"  # the feed links the newest part
        ids: list[str] = []
        for path in chain:
            held = item_ids(path)
            assert path.stat().st_size <= 3000 or len(held) == 1
            ids.extend(held)
        assert ids == [url_of(n) for n in (7, 6, 5, 4, 3, 2, 1)]  # newest to oldest, once each
        if fmt != "json":  # and forward again, part by part
            forward = [links(p).get("next-archive", "").removeprefix(BASE) for p in chain]
            assert forward[1:] == [p.relative_to(tmp_path / "feeds").as_posix() for p in chain[:-1]]
    # A larger budget: parts left from the longer split go away
    config.write_text(config.read_text(encoding="utf-8").replace("3000", "5MiB"), encoding="utf-8")
    assert run_cli("build", "-c", str(config)).code == 0
    assert sorted(p.name for p in (tmp_path / "feeds" / "all").glob("*.xml")) == \
        ["2024-02.xml", "2024-03.xml"]


def test_a_month_that_lost_most_of_its_articles_is_kept(tmp_path: Path) -> None:
    config = make_site(tmp_path)
    assert run_cli("build", "-c", str(config)).code == 0
    before = (tmp_path / "feeds" / "all" / "2024-02.xml").read_bytes()
    (tmp_path / "articles" / "001.txt").unlink()
    (tmp_path / "articles" / "002.txt").unlink()
    result = run_cli("build", "-c", str(config))
    assert result.code == 4
    assert "all/2024-02.xml: error: would shrink from 3 to 1 items" in result.err
    assert (tmp_path / "feeds" / "all" / "2024-02.xml").read_bytes() == before
    assert run_cli("build", "--allow-shrink", "-c", str(config)).code == 0
    assert item_ids(tmp_path / "feeds" / "all" / "2024-02.xml") == [url_of(3)]


def test_check_writes_no_archive(tmp_path: Path) -> None:
    result = run_cli("check", "-c", str(make_site(tmp_path)))
    assert result.code == 0, result.err
    assert not (tmp_path / "feeds").exists()


def test_history_is_loaded_one_month_at_a_time(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Six months of four articles: the build never holds more full articles than the
    feed's and one month's, however long the history."""
    stories = {n: utc(2024, 1 + n // 4, 2 + n % 4 * 5) for n in range(24)}
    config = load_config(make_site(tmp_path, stories, limit=2))
    held: list[int] = []
    original = build_module._ArticleLoader.load

    def load(self: Any, entries: Any, keep: bool = True, meanwhile: Any = None) -> None:
        original(self, entries, keep, meanwhile)
        held.append(sum(1 for a in self.loaded.values() if a is not None))

    monkeypatch.setattr(build_module._ArticleLoader, "load", load)
    report = build(config, datetime.now(UTC))
    assert len(report.archives) == 5 * 3 and all(a.written for a in report.archives)
    assert max(held) <= 2 + 4, held


def test_only_monthly_archives_exist(tmp_path: Path) -> None:
    """`archive: monthly` is accepted (above), `archive: weekly` is not (config.py)."""
    config = make_site(tmp_path)
    raw = yaml.safe_load(config.read_text(encoding="utf-8"))
    raw["channels"]["all"]["archive"] = "weekly"
    config.write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")
    result = run_cli("check", "-c", str(config))
    assert result.code == 3 and "channels.all.archive" in result.err
