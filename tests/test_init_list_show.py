"""The commands that help set up channels, run as a user types them.

`init` reads an archive and writes a starter config that `check` accepts and `build`
turns into feeds real readers parse, and it never overwrites a file; `list` counts what
each channel selects and carries, writing nothing; `show` prints one file as the parser
reads it, or why a build would skip it."""

from __future__ import annotations

import dataclasses
import json
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from syndicate.model import Article
from syndicate.survey import article_json, guess_language, inspect_file
from tests.conftest import (
    FIXTURES,
    ROOT,
    SEED,
    SEEDS,
    read_feed,
    read_json_feed,
    run_cli,
    write_config,
)

MESSY_CASES: dict[str, Any] = yaml.safe_load((FIXTURES / "messy_cases.yaml").read_text("utf-8"))


# --- init ---------------------------------------------------------------------------------------


@pytest.fixture
def initialized(tmp_path: Path) -> Path:
    shutil.copytree(SEEDS, tmp_path / "seeds")
    result = run_cli("init", "--source", "seeds", cwd=tmp_path)
    assert result.code == 0, result.err
    assert "wrote config.yaml with 7 channels" in result.out
    assert "from 14 articles" in result.out
    return tmp_path / "config.yaml"


def test_init_writes_a_channel_per_section_plus_all(initialized: Path) -> None:
    config = yaml.safe_load(initialized.read_text(encoding="utf-8"))
    assert list(config["channels"]) == ["all", "business", "china", "world", "opinion",
                                        "technology", "culture"]  # most articles first
    assert "include" not in config["channels"]["all"]
    for name, channel in list(config["channels"].items())[1:]:
        assert channel["include"] == {"section": [name]}
        assert channel["link"] == f"https://cn.nytimes.com/{name}/"
        assert channel["language"] == "zh-CN"
    site = config["site"]
    assert site["source"] == "seeds" and site["output"] == "feeds"
    # <time> values run about eight hours ahead of the capture headers, titles are Chinese
    assert site["timezone"] == "Asia/Shanghai"
    assert site["base_url"] == "https://feeds.example.org/"


def test_init_explains_every_key_in_comments(initialized: Path) -> None:
    text = initialized.read_text(encoding="utf-8")
    lines = text.splitlines()
    for key in ("title", "base_url", "source", "output", "timezone", "encodings", "cache",
                "link", "description", "language", "limit", "formats", "content", "images",
                "max_bytes"):
        [first] = [n for n, line in enumerate(lines) if line.strip().startswith(f"{key}:")][:1]
        assert lines[first - 1].strip().startswith("#"), f"{key} has no comment above it"
    for optional in ("hub:", "schedule:", "include:", "exclude:", "section:", "url:", "author:"):
        assert f"# {optional}" in text or f"#   {optional}" in text, optional


def test_init_config_passes_check_and_builds_feeds_readers_parse(initialized: Path) -> None:
    folder = initialized.parent
    check = run_cli("check", "-v", cwd=folder)
    assert check.code == 0, check.err
    assert check.err == ""  # no warnings either: the zone was right
    built = run_cli("build", "-v", cwd=folder)
    assert built.code == 0 and built.err == "", built.err
    feeds = folder / "feeds"
    config = yaml.safe_load(initialized.read_text(encoding="utf-8"))
    for name in config["channels"]:
        rss, atom = read_feed(feeds / f"{name}.xml"), read_feed(feeds / f"{name}.atom")
        json_feed = read_json_feed(feeds / f"{name}.json")
        assert len(rss.entries) == len(atom.entries) == len(json_feed["items"]) > 0
        if name != "all":
            assert {entry.tags[0].term for entry in rss.entries} == {name}
    assert (feeds / "index.html").is_file() and (feeds / "index.opml").is_file()


def test_init_never_overwrites(initialized: Path) -> None:
    before = initialized.read_bytes()
    again = run_cli("init", "--source", "seeds", cwd=initialized.parent)
    assert again.code == 2
    assert "config.yaml: error: already exists; init never overwrites" in again.err
    assert again.out == ""
    assert initialized.read_bytes() == before
    link = initialized.parent / "link.yaml"
    link.symlink_to(initialized.parent / "elsewhere.yaml")  # dangling: still not written through
    assert run_cli("init", "--source", "seeds", "-c", "link.yaml", cwd=initialized.parent).code == 2
    assert not (initialized.parent / "elsewhere.yaml").exists()
    other = run_cli("init", "--source", "seeds", "-c", "other.yaml", cwd=initialized.parent)
    assert other.code == 0 and (initialized.parent / "other.yaml").is_file()


def test_init_needs_an_archive(tmp_path: Path) -> None:
    result = run_cli("init", cwd=tmp_path)  # no --source and no ./articles
    assert result.code == 4
    assert "--source" in result.err
    assert not (tmp_path / "config.yaml").exists()


def test_init_on_the_messy_archive_passes_check(tmp_path: Path) -> None:
    result = run_cli("init", "--source", str(FIXTURES / "messy"), "--base-url",
                     "https://news.example.net/feeds/", cwd=tmp_path)
    assert result.code == 0, result.err
    assert "files skipped" in result.out
    config = yaml.safe_load((tmp_path / "config.yaml").read_text(encoding="utf-8"))
    assert config["site"]["source"] == str(FIXTURES / "messy")  # outside: absolute
    assert config["site"]["base_url"] == "https://news.example.net/feeds/"
    check = run_cli("check", cwd=tmp_path)
    assert check.code == 0, check.err  # skipped files are warnings


def test_init_makes_safe_unique_ids_for_odd_sections(tmp_path: Path) -> None:
    articles = tmp_path / "articles"
    articles.mkdir()
    base = SEED.read_text(encoding="utf-8")
    for n, path in enumerate(["C%2B%2B%20News/2024/a", "all/x", "index/y", "体育/z", "c-news/w"]):
        url = f"https://example.com/{path}/"
        text = base.replace("https://cn.nytimes.com/world/20240516/putin-xi-china-summit/", url)
        (articles / f"{n}.txt").write_text(text, encoding="utf-8")
    assert run_cli("init", cwd=tmp_path).code == 0
    config = yaml.safe_load((tmp_path / "config.yaml").read_text(encoding="utf-8"))
    sections = {cid: c.get("include", {}).get("section") for cid, c in config["channels"].items()}
    assert sections == {"all": None, "all-section": ["all"], "c-news": ["c++ news"],
                        "c-news-2": ["c-news"], "index-section": ["index"], "section": ["体育"]}
    built = run_cli("build", cwd=tmp_path)
    assert built.code == 0, built.err
    assert len(read_feed(tmp_path / "feeds" / "c-news.xml").entries) == 1


def test_init_reads_a_utc_archive_as_utc(tmp_path: Path) -> None:
    articles = tmp_path / "articles"
    articles.mkdir()
    start = datetime(2024, 3, 1, 12, tzinfo=UTC)
    for n in range(5):
        captured = start + timedelta(days=n)
        published = captured - timedelta(minutes=5 + 7 * n)
        (articles / f"{n}.txt").write_text(
            f"<!--{int(captured.timestamp() * 1000)}-->\n[Story {n}](https://example.com/news/{n}/)\n"
            f"------\n<time datetime=\"{published:%Y-%m-%d %H:%M:%S}\">x</time>"
            f"<section><p>Text {n}.</p></section>", encoding="utf-8")
    assert run_cli("init", cwd=tmp_path).code == 0
    config = yaml.safe_load((tmp_path / "config.yaml").read_text(encoding="utf-8"))
    assert config["site"]["timezone"] == "UTC"
    assert "language" not in config["channels"]["all"]  # English titles: not guessed


@pytest.mark.parametrize(("titles", "language"), [
    (["普京访华想从习近平那里得到什么", "九块九的咖啡还能卖多久"], "zh-CN"),
    (["普京訪華想從習近平那裡得到什麼", "九塊九的咖啡還能賣多久"], "zh-TW"),
    (["東京の桜が満開になりました"], "ja"),
    (["서울의 봄 날씨"], "ko"),
    (["What Putin wants from Xi", "Coffee for 9.9 yuan"], None),
    ([""], None),
])
def test_language_is_guessed_from_titles(titles: list[str], language: str | None) -> None:
    assert guess_language(titles) == language


# --- list ---------------------------------------------------------------------------------------


@pytest.fixture
def sample_config(tmp_path: Path) -> Path:
    config = yaml.safe_load((ROOT / "config.yaml").read_text(encoding="utf-8"))
    config["site"].update(source=str(ROOT / "seeds"), output=str(tmp_path / "feeds"),
                          cache=str(tmp_path / "cache"))
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return path


def test_list_shows_counts_and_newest_dates(sample_config: Path) -> None:
    result = run_cli("list", "-c", str(sample_config))
    assert result.code == 0, result.err
    lines = result.out.splitlines()
    assert lines[0].split() == ["CHANNEL", "MATCHED", "IN", "FEED", "NEWEST", "TITLE"]
    rows = {line.split()[0]: line.split() for line in lines[1:-1]}
    # (matched before limit, in the feed, newest date and time in Asia/Shanghai)
    assert {k: v[1:5] for k, v in rows.items()} == {
        "all": ["14", "14", "2024-06-18", "13:26"],
        "world": ["3", "3", "2024-05-16", "11:37"],
        "china-business": ["6", "4", "2024-06-18", "13:26"],  # limit: 4
        "headlines": ["12", "10", "2024-06-18", "13:26"],  # limit: 10, no opinion
    }
    assert lines[-1] == "15 files, 14 articles; times in Asia/Shanghai"
    assert not (sample_config.parent / "feeds").exists()  # nothing written
    assert not (sample_config.parent / "cache").exists()


def test_list_as_json_lines(sample_config: Path) -> None:
    result = run_cli("list", "-c", str(sample_config), "--log-format", "json")
    assert result.code == 0, result.err
    records = [json.loads(line) for line in result.out.splitlines()]
    assert [r["channel"] for r in records] == ["all", "world", "china-business", "headlines"]
    assert records[1] == {"channel": "world", "title": "国际 · 纽约时报中文网", "matched": 3,
                          "items": 3, "newest": "2024-05-16T03:37:02+00:00"}


def test_list_counts_what_the_byte_budget_leaves(tmp_path: Path) -> None:
    shutil.copytree(SEEDS, tmp_path / "articles")
    config = write_config(tmp_path, {"small": {"title": "Small", "link": "https://cn.nytimes.com/",
                                               "max_bytes": "40KiB", "formats": ["json"]}})
    result = run_cli("list", "-c", str(config))
    assert result.code == 0, result.err
    [row] = [line.split() for line in result.out.splitlines() if line.startswith("small")]
    assert run_cli("build", "-c", str(config)).code == 0
    carried = len(read_json_feed(tmp_path / "feeds" / "small.json")["items"])
    assert row[1] == "14" and int(row[2]) == carried < 14


def test_list_with_a_bad_config_lists_its_problems(tmp_path: Path) -> None:
    config = write_config(tmp_path, {"all": {"title": "All", "link": "https://x.org/", "limit": "ten"}})
    result = run_cli("list", "-c", str(config))
    assert result.code == 3
    assert "channels.all.limit: expected a positive integer, got 'ten'" in result.err


# --- show ---------------------------------------------------------------------------------------


def test_show_prints_the_article_as_json(sample_config: Path) -> None:
    result = run_cli("show", str(SEED), "-c", str(sample_config))
    assert result.code == 0, result.err
    record = json.loads(result.out)
    assert set(record) == {f.name for f in dataclasses.fields(Article)} | {"warnings"}
    assert record["url"] == "https://cn.nytimes.com/world/20240516/putin-xi-china-summit/"
    assert record["title"] == "普京访华想从习近平那里得到什么"
    assert record["published"] == "2024-05-16T03:37:02+00:00"
    assert record["source_time"] == "2024-05-16T11:19:41+08:00"  # the config's zone
    assert record["authors"] == ["DAVID PIERSON"]
    assert record["path"] == SEED.name  # as a build names it: relative to the source
    assert [image["lead"] for image in record["images"]] == [True, False, False]
    assert record["images"][0]["credit"] == "Sergei Guneyev/Sputnik"
    assert record["original_lang"] == "en"
    assert record["warnings"] == []
    assert not (sample_config.parent / "feeds").exists()


def test_show_without_a_config_reads_in_utc(tmp_path: Path) -> None:
    result = run_cli("show", str(SEED), cwd=tmp_path)
    assert result.code == 0
    assert "no config.yaml" in result.err
    assert json.loads(result.out)["source_time"] == "2024-05-16T11:19:41+00:00"


def test_show_names_the_parsers_warnings(tmp_path: Path) -> None:
    result = run_cli("show", str(FIXTURES / "messy" / "header_garbled.txt"), cwd=tmp_path)
    assert result.code == 0
    warnings = json.loads(result.out)["warnings"]
    assert warnings and "header" in warnings[0]


def test_show_says_why_a_file_would_be_skipped(tmp_path: Path) -> None:
    result = run_cli("show", str(FIXTURES / "messy" / "no_title_line.txt"), cwd=tmp_path)
    assert result.code == 1
    assert json.loads(result.out) == {"path": "no_title_line.txt", "skipped": True,
                                      "reason": result.err.split(": skipped: ", 1)[1].strip()}
    assert "title" in json.loads(result.out)["reason"]


@pytest.mark.parametrize("name", sorted(n for n, case in MESSY_CASES.items()
                                        if case["outcome"] == "skipped"))
def test_every_skip_reason_of_the_messy_archive(name: str) -> None:
    inspection = inspect_file(FIXTURES / "messy" / name, None, datetime.now(UTC))
    assert inspection.article is None and inspection.reason
    assert MESSY_CASES[name]["reason"] in inspection.reason
    assert json.loads(article_json(inspection))["skipped"] is True


@pytest.mark.parametrize("name", ["README.md", "cover.jpg", ".hidden"])
def test_show_says_when_builds_never_read_a_file(name: str, tmp_path: Path) -> None:
    path = tmp_path / name
    path.write_bytes((FIXTURES / "messy" / name).read_bytes() if name != ".hidden" else SEED.read_bytes())
    inspection = inspect_file(path, None, datetime.now(UTC))
    assert inspection.article is None and (inspection.reason or "").startswith("passed over")


def test_show_a_missing_file_is_a_usage_error(tmp_path: Path) -> None:
    result = run_cli("show", "nope.txt", cwd=tmp_path)
    assert result.code == 2
    assert "nope.txt: error: no such file" in result.err


def test_help_lists_the_new_commands_and_their_exit_codes() -> None:
    result = run_cli("--help")
    for command in ("list", "show", "serve", "init"):
        assert command in result.out
    assert "init: the config file already exists" in result.out
    assert "show: the file gives no article" in result.out
