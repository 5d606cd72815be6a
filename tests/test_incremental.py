"""The cache only saves work: after every kind of change (edit, add, delete, rename, config,
a corrupt or foreign cache) a cached build gives exactly the bytes of a --no-cache build,
and a run with nothing changed reads no file and writes nothing."""

from __future__ import annotations

import json
import os
import random
import shutil
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from syndicate.build import ASIDE_MIN
from tests.conftest import ROOT, SEED, Run, make_articles, run_cli, tree_bytes, write_config

CHANNELS = {
    "all": {"title": "All", "link": "https://cn.nytimes.com/", "limit": 20},
    "world": {"title": "World", "link": "https://cn.nytimes.com/world/",
              "include": {"section": "world"}},
    "business": {"title": "Business", "link": "https://cn.nytimes.com/business/",
                 "include": {"section": "business"}, "images": "enclosure"},
}


@pytest.fixture
def site_dir(tmp_path: Path) -> Path:
    make_articles(tmp_path / "articles", 60)
    write_config(tmp_path, CHANNELS)
    first = run_cli("build", "-v", "-c", str(tmp_path / "config.yaml"))
    assert first.code == 0, first.err
    assert "(60 read)" in first.out
    return tmp_path


def _same_as_uncached(folder: Path) -> None:
    """Build with the cache, then compare with a --no-cache build into another folder."""
    cached = run_cli("build", "-v", "-c", str(folder / "config.yaml"))
    assert cached.code == 0, cached.err
    config = (folder / "config.yaml").read_text(encoding="utf-8")
    (folder / "uncached.yaml").write_text(
        config.replace("output: feeds", "output: uncached"), encoding="utf-8")
    uncached = run_cli("build", "--no-cache", "-c", str(folder / "uncached.yaml"))
    assert uncached.code == 0, uncached.err
    assert tree_bytes(folder / "feeds") == tree_bytes(folder / "uncached")


def _mtimes(folder: Path) -> dict[str, int]:
    return {p.name: p.stat().st_mtime_ns for p in (folder / "feeds").iterdir()}


def test_warm_run_reads_nothing_and_writes_nothing(site_dir: Path) -> None:
    before = _mtimes(site_dir)
    warm = run_cli("build", "-v", "-c", str(site_dir / "config.yaml"))
    assert warm.code == 0
    assert "(0 read)" in warm.out and " 0 written, 9 unchanged" in warm.out
    assert _mtimes(site_dir) == before


def test_run_with_nothing_changed_loads_no_parser_and_repeats_the_report(site_dir: Path) -> None:
    """The commonest cron run takes the no-change shortcut (build.py): it reports what
    the last build did (skipped files named again) without loading the parser, the
    renderers or the last run's stories."""
    _broken_file(site_dir)
    assert run_cli("build", "-c", str(site_dir / "config.yaml")).code == 0
    before = _mtimes(site_dir)
    script = (
        "import sys\n"
        "from datetime import UTC, datetime\n"
        "from syndicate.build import build\n"
        "from syndicate.config import load_config\n"
        f"report = build(load_config({str(site_dir / 'config.yaml')!r}), datetime.now(UTC))\n"
        "print(report.files_seen, report.articles, report.written, len(report.feeds),\n"
        "      [p.path.rsplit('/', 1)[-1] for p in report.skipped])\n"
        "print(sorted(m for m in sys.modules if m in {'syndicate.pipeline', 'syndicate.parse',\n"
        "             'lxml', 'feedgen', 'nh3', 'syndicate.render'}))\n")
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          check=True)
    assert proc.stdout.splitlines() == ["61 60 0 9 ['broken.txt']", "[]"]
    assert _mtimes(site_dir) == before


@pytest.mark.parametrize("name", ["index.html", "world.html", "index.opml", "all.atom"])
def test_any_output_file_removed_is_written_again(site_dir: Path, name: str) -> None:
    (site_dir / "feeds" / name).unlink()
    result = run_cli("build", "-v", "-c", str(site_dir / "config.yaml"))
    assert result.code == 0 and (site_dir / "feeds" / name).exists()
    _same_as_uncached(site_dir)


def test_new_article_rerenders_only_the_channels_it_reaches(site_dir: Path) -> None:
    before = _mtimes(site_dir)
    make_articles(site_dir / "articles", 1, start=60)  # story 60: section "world"
    result = run_cli("build", "-v", "-c", str(site_dir / "config.yaml"))
    assert "(1 read)" in result.out and " 6 written, 3 unchanged" in result.out
    after = _mtimes(site_dir)
    feeds = [n for n in after if n.endswith((".xml", ".atom", ".json"))]
    changed = sorted(n for n in feeds if after[n] != before[n])
    assert changed == sorted(n for n in feeds if n.startswith(("all.", "world.")))
    _same_as_uncached(site_dir)


def _edit(folder: Path) -> None:
    path = folder / "articles" / "000059.txt"
    path.write_text(path.read_text(encoding="utf-8").replace("第一段", "改写后的第一段"), encoding="utf-8")


def _add(folder: Path) -> None:
    make_articles(folder / "articles", 5, start=100)


def _delete(folder: Path) -> None:
    (folder / "articles" / "000058.txt").unlink()


def _rename(folder: Path) -> None:
    (folder / "articles" / "000057.txt").rename(folder / "articles" / "renamed.txt")


def _recapture(folder: Path) -> None:
    """The same story captured again later with new text: one item, updated moves."""
    original = (folder / "articles" / "000056.txt").read_text(encoding="utf-8")
    header = int(original[4:17]) + 86_400_000
    again = f"<!--{header}-->" + original[20:].replace("第二段", "更正后的第二段")
    (folder / "articles" / "000056-again.txt").write_text(again, encoding="utf-8")


def _config(folder: Path) -> None:
    channels = {**CHANNELS, "world": {**CHANNELS["world"], "limit": 3, "content": "summary"}}
    write_config(folder, channels)


def _timezone(folder: Path) -> None:
    write_config(folder, CHANNELS, timezone="UTC")


def _broken_file(folder: Path) -> None:
    (folder / "articles" / "broken.txt").write_bytes(b"\x00\x01binary")


@pytest.mark.parametrize("change", [_edit, _add, _delete, _rename, _recapture, _config,
                                    _timezone, _broken_file], ids=lambda f: f.__name__[1:])
def test_cached_build_equals_uncached_after(site_dir: Path, change: Callable[[Path], None]) -> None:
    change(site_dir)
    _same_as_uncached(site_dir)


def test_recaptured_story_is_one_item_with_new_updated(site_dir: Path) -> None:
    _recapture(site_dir)
    assert run_cli("build", "-c", str(site_dir / "config.yaml")).code == 0
    items = json.loads((site_dir / "feeds" / "all.json").read_text(encoding="utf-8"))["items"]
    [item] = [i for i in items if i["id"].endswith("/story-56/")]
    assert item["date_modified"] > item["date_published"]
    assert "更正后的第二段" in item["content_html"]


def test_deleted_feed_file_is_written_again(site_dir: Path) -> None:
    (site_dir / "feeds" / "world.xml").unlink()
    assert run_cli("build", "-c", str(site_dir / "config.yaml")).code == 0
    assert (site_dir / "feeds" / "world.xml").exists()
    _same_as_uncached(site_dir)


def test_hand_edited_feed_file_is_repaired(site_dir: Path) -> None:
    (site_dir / "feeds" / "world.json").write_text("{}", encoding="utf-8")
    assert run_cli("build", "-c", str(site_dir / "config.yaml")).code == 0
    _same_as_uncached(site_dir)


@pytest.mark.parametrize("damage", ["garbage", "foreign", "other-version"])
def test_unusable_cache_is_rebuilt_with_a_notice(site_dir: Path, damage: str) -> None:
    state = site_dir / ".syndicate" / "state.sqlite"
    if damage == "garbage":
        state.write_bytes(b"this is not a database" * 100)
    else:
        state.unlink()
        db = sqlite3.connect(state)
        if damage == "foreign":
            db.execute("CREATE TABLE photos (id INTEGER)")
        else:
            db.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT)")
            db.execute("INSERT INTO meta VALUES ('schema', '999')")
        db.commit()
        db.close()
    _edit(site_dir)
    result = run_cli("build", "-v", "-c", str(site_dir / "config.yaml"))
    assert result.code == 0
    [notice] = [line for line in result.err.splitlines() if "cache unusable" in line]
    assert "rebuilt" in notice and "Traceback" not in result.err
    _same_as_uncached(site_dir)
    assert "(0 read)" in run_cli("build", "-v", "-c", str(site_dir / "config.yaml")).out


def test_cache_damaged_past_its_first_pages_is_rebuilt_with_a_notice(site_dir: Path) -> None:
    """A power cut can leave a cache whose first pages are whole and a later one not.
    SQLite finds that only when it reads the page, in the middle of a build: the build
    is made again with a rebuilt cache (keeping the ledger, which can still be read),
    not ended by a traceback."""
    state = site_dir / ".syndicate" / "state.sqlite"
    db = sqlite3.connect(state)
    [(root,)] = db.execute("SELECT rootpage FROM sqlite_master WHERE name = 'snapshot'")
    page_size = db.execute("PRAGMA page_size").fetchone()[0]
    db.close()
    with state.open("r+b") as file:  # the snapshot's first page, read after the cache opens
        file.seek((root - 1) * page_size)
        file.write(b"\0" * page_size)
    _edit(site_dir)
    result = run_cli("build", "-v", "-c", str(site_dir / "config.yaml"))
    assert result.code == 0, result.err
    [notice] = [line for line in result.err.splitlines() if "cache unusable" in line]
    assert "malformed" in notice and "keeping its ledger of 60 stories" in notice
    assert "Traceback" not in result.err
    _same_as_uncached(site_dir)
    assert "(0 read)" in run_cli("build", "-v", "-c", str(site_dir / "config.yaml")).out


def test_a_cache_that_cannot_be_used_is_named_with_its_reason(site_dir: Path) -> None:
    """A cache SQLite cannot open or write (here a folder where its file should be) is
    not rebuilt in place: the build stops with a one-line error that names it."""
    state = site_dir / ".syndicate" / "state.sqlite"
    state.unlink()
    state.mkdir()
    result = run_cli("build", "-c", str(site_dir / "config.yaml"))
    assert result.code == 4 and "Traceback" not in result.err
    assert "state.sqlite: error: cannot use the cache: unable to open database file" in result.err


def test_parallel_first_pass_equals_sequential(tmp_path: Path) -> None:
    """Enough files to use worker processes (see index.PARALLEL_MIN)."""
    make_articles(tmp_path / "articles", 450)
    (tmp_path / "articles" / "seed.txt").write_bytes(SEED.read_bytes())
    write_config(tmp_path, CHANNELS)
    result = run_cli("build", "-v", "-c", str(tmp_path / "config.yaml"))
    assert "(451 read)" in result.out
    _same_as_uncached(tmp_path)


def _item(folder: Path, story: int) -> dict[str, str]:
    items = json.loads((folder / "feeds" / "all.json").read_text(encoding="utf-8"))["items"]
    [item] = [i for i in items if i["id"].endswith(f"/story-{story}/")]
    return item


def test_time_zone_change_reads_every_file_again(tmp_path: Path) -> None:
    """A story dated only by its <time> wall clock moves with the site's time zone: after
    the zone changes, nothing kept from reading the files in the old one is used."""
    make_articles(tmp_path / "articles", 30)
    path = tmp_path / "articles" / "000029.txt"
    text = path.read_text(encoding="utf-8")
    path.write_text(text[text.index("\n") + 1:], encoding="utf-8")  # no capture-time header
    write_config(tmp_path, CHANNELS, timezone="UTC")
    assert run_cli("build", "-c", str(tmp_path / "config.yaml")).code == 0
    read_as_utc = _item(tmp_path, 29)["date_published"]
    # Eight hours earlier in Shanghai (the ledger lets a date move earlier, never later).
    write_config(tmp_path, CHANNELS, timezone="Asia/Shanghai")
    result = run_cli("build", "-v", "-c", str(tmp_path / "config.yaml"))
    assert "(30 read)" in result.out
    assert _item(tmp_path, 29)["date_published"] < read_as_utc
    # (Not compared with a --no-cache build: the ledger keeps date_modified where readers
    # saw it, since the text did not change, and a build without it cannot know that.)


def test_story_recaptured_in_place_keeps_its_dates_until_its_text_changes(site_dir: Path) -> None:
    """The archive keeps only the newest capture (the file is overwritten): the ledger
    remembers what readers were told, so the item does not jump or claim an edit."""
    path = site_dir / "articles" / "000055.txt"
    first = _item(site_dir, 55)
    original = path.read_text(encoding="utf-8")
    later = f"<!--{int(original[4:17]) + 3_600_000}-->" + original[20:]
    path.write_text(later, encoding="utf-8")
    assert run_cli("build", "-c", str(site_dir / "config.yaml")).code == 0
    unchanged = _item(site_dir, 55)
    assert (unchanged["date_published"], unchanged["date_modified"]) == (
        first["date_published"], first["date_modified"])
    path.write_text(later.replace("第一段", "更新后的第一段"), encoding="utf-8")
    assert run_cli("build", "-c", str(site_dir / "config.yaml")).code == 0
    edited = _item(site_dir, 55)
    assert edited["date_published"] == first["date_published"]
    assert edited["date_modified"] > first["date_modified"]


def test_ledger_survives_a_cache_from_another_version(site_dir: Path) -> None:
    """Upgrading syndicate rebuilds its cache, but keeps what readers were told."""
    first = _item(site_dir, 54)
    db = sqlite3.connect(site_dir / ".syndicate" / "state.sqlite")
    db.execute("UPDATE meta SET value = '1' WHERE key = 'schema'")
    db.commit()
    db.close()
    _upgrade_keeps_the_dates(site_dir, first)


def test_only_a_cache_with_nothing_to_lose_is_written_without_waiting_for_the_disk(
        tmp_path: Path) -> None:
    """A new cache's commits are not synced (a power cut loses nothing a build cannot
    make again); a cache opened again, or rebuilt around another version's ledger, holds
    what readers were told, and every commit waits until the disk has it."""
    from syndicate.cache import Cache

    def synchronous(cache: Cache) -> int:
        return int(cache._db.execute("PRAGMA synchronous").fetchone()[0])

    new, _ = Cache.open(tmp_path, "settings")
    assert synchronous(new) == 0  # OFF
    new._db.execute("INSERT INTO ledger VALUES ('https://example.com/a', 'h', 1.0, 2.0)")
    new.commit()
    new.close()
    again, _ = Cache.open(tmp_path, "settings")
    assert synchronous(again) == 2  # FULL, SQLite's default
    again._db.execute("UPDATE meta SET value = '1' WHERE key = 'schema'")
    again.commit()
    again.close()
    rebuilt, notice = Cache.open(tmp_path, "settings")
    assert notice is not None and "keeping its ledger of 1 stories" in notice
    assert synchronous(rebuilt) == 2
    rebuilt.close()


def test_ledger_with_dates_as_text_survives_the_upgrade(site_dir: Path) -> None:
    """Caches before schema 11 kept the ledger's dates as ISO 8601 text; upgrading from
    one still keeps what readers were told."""
    from datetime import UTC, datetime

    first = _item(site_dir, 54)
    db = sqlite3.connect(site_dir / ".syndicate" / "state.sqlite")
    rows = db.execute("SELECT url, published, updated FROM ledger").fetchall()
    assert rows and all(isinstance(p, float) and isinstance(u, float) for _url, p, u in rows)
    db.executemany("UPDATE ledger SET published = ?, updated = ? WHERE url = ?",
                   [(datetime.fromtimestamp(p, UTC).isoformat(),
                     datetime.fromtimestamp(u, UTC).isoformat(), url) for url, p, u in rows])
    db.execute("UPDATE meta SET value = '10' WHERE key = 'schema'")
    db.commit()
    db.close()
    assert "schema 10, this syndicate uses" in _upgrade_keeps_the_dates(site_dir, first)


def _upgrade_keeps_the_dates(site_dir: Path, first: dict[str, str]) -> str:
    """Move story 54's capture an hour later and build with the cache the caller made
    another version's: the story keeps the dates readers were given (`first`). Returns
    the build's stderr."""
    path = site_dir / "articles" / "000054.txt"
    original = path.read_text(encoding="utf-8")
    path.write_text(f"<!--{int(original[4:17]) + 3_600_000}-->" + original[20:], encoding="utf-8")
    result = run_cli("build", "-c", str(site_dir / "config.yaml"))
    assert result.code == 0
    assert "keeping its ledger of 60 stories" in result.err
    again = _item(site_dir, 54)
    assert (again["date_published"], again["date_modified"]) == (
        first["date_published"], first["date_modified"])
    return result.err


def test_unreadable_snapshot_is_computed_again(site_dir: Path) -> None:
    db = sqlite3.connect(site_dir / ".syndicate" / "state.sqlite")
    db.execute("UPDATE snapshot SET data = ?", (b"not a pickle",))
    db.commit()
    db.close()
    result = run_cli("build", "-v", "-c", str(site_dir / "config.yaml"))
    assert result.code == 0 and "Traceback" not in result.err
    _same_as_uncached(site_dir)


def test_a_date_judged_against_the_clock_is_judged_again(tmp_path: Path) -> None:
    """A header 'in the future' is not used today; once that day has come it is judged
    again (no more warning), even though the file did not change and its entry is in the
    cache. Readers were already told the <time> date, and the ledger keeps it."""
    from datetime import UTC, datetime

    from syndicate.build import build
    from syndicate.config import load_config

    make_articles(tmp_path / "articles", 3)
    path = tmp_path / "articles" / "000001.txt"
    text = path.read_text(encoding="utf-8")
    future_ms = int(datetime(2030, 1, 1, tzinfo=UTC).timestamp() * 1000)
    path.write_text(f"<!--{future_ms}-->" + text[20:], encoding="utf-8")
    config = load_config(write_config(tmp_path, CHANNELS))
    today, later = datetime(2026, 1, 1, tzinfo=UTC), datetime(2030, 6, 1, tzinfo=UTC)
    first = build(config, today)
    assert any("implausible" in p.message for p in first.problems)
    second = build(config, later)
    assert not any("implausible" in p.message for p in second.problems)
    assert _item(tmp_path, 1)["date_published"] == "2024-01-01T00:50:00Z"  # the <time>


def test_added_old_story_lands_in_its_place(site_dir: Path) -> None:
    """New files are inserted into the last run's stories: one dated in the middle of
    the feed must land there, exactly as a full run would place it."""
    source = (site_dir / "articles" / "000050.txt").read_text(encoding="utf-8")
    header = int(source[4:17]) + 60_000  # a minute after story 50
    (site_dir / "articles" / "late-addition.txt").write_text(
        f"<!--{header}-->" + source[20:].replace("story-50/", "story-50b/"), encoding="utf-8")
    result = run_cli("build", "-v", "-c", str(site_dir / "config.yaml"))
    assert "(1 read)" in result.out
    ids = [i["id"] for i in json.loads((site_dir / "feeds" / "all.json").read_text())["items"]]
    position = {story: n for n, url in enumerate(ids) for story in [url.rsplit("/", 2)[1]]}
    assert position["story-51"] + 1 == position["story-50b"] == position["story-50"] - 1
    _same_as_uncached(site_dir)


@pytest.mark.parametrize("added_max", [1, 2000], ids=["compacted", "kept-apart"])
def test_runs_of_additions_then_an_edit_equal_uncached(site_dir: Path, added_max: int,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """Additions-only runs store only what they add (stories._Snapshot), until there are
    ADDED_MAX such stories and everything is stored as one list again: whichever way the
    snapshot was kept, reading it back must give what a full run gives."""
    from datetime import UTC, datetime

    from syndicate import stories
    from syndicate.build import build
    from syndicate.config import load_config

    monkeypatch.setattr(stories, "ADDED_MAX", added_max)
    config = load_config(site_dir / "config.yaml")
    older = (site_dir / "articles" / "000030.txt").read_text(encoding="utf-8")
    for n in (60, 61, 62):
        make_articles(site_dir / "articles", 1, start=n)
        if n == 61:  # an old story too: it must land in its place, not on top
            (site_dir / "articles" / "late.txt").write_text(
                older.replace("story-30/", "story-30b/"), encoding="utf-8")
        assert build(config, datetime.now(UTC)).files_parsed == (2 if n == 61 else 1)
        (site_dir / "feeds" / "index.html").unlink()  # no shortcut: the snapshot is read
        _same_as_uncached(site_dir)
    _edit(site_dir)
    _same_as_uncached(site_dir)


def test_new_story_parses_only_its_own_article(site_dir: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """The articles of the last build's feeds are kept in the cache: a new story makes
    its channels render again, but only its own file goes through the second pass."""
    from datetime import UTC, datetime

    from syndicate import content
    from syndicate.build import build
    from syndicate.config import load_config

    parsed: list[str] = []
    original = content.article_from

    def counting(entry, body, **options):  # type: ignore[no-untyped-def]
        parsed.append(entry.path)
        return original(entry, body, **options)

    monkeypatch.setattr(content, "article_from", counting)
    make_articles(site_dir / "articles", 1, start=60)
    report = build(load_config(site_dir / "config.yaml"), datetime.now(UTC))
    assert report.written > 0
    assert parsed == ["000060.txt"]
    _same_as_uncached(site_dir)


def test_story_added_after_a_new_channel_appeared_equals_uncached(site_dir: Path) -> None:
    """The last run's selections are kept per channel rules: a channel the last run did
    not have is selected from the whole archive, then kept like the others."""
    _config(site_dir)
    _same_as_uncached(site_dir)
    _add(site_dir)
    result = run_cli("build", "-v", "-c", str(site_dir / "config.yaml"))
    assert "(5 read)" in result.out
    _same_as_uncached(site_dir)


def _damage_snapshot_stories(folder: Path) -> None:
    """Leave the snapshot's head readable, its pickled stories not."""
    from syndicate.stories import _Snapshot

    db = sqlite3.connect(folder / ".syndicate" / "state.sqlite")
    assert db.execute("UPDATE snapshot SET data = ? WHERE part >= ?",
                      (b"not a pickle", _Snapshot.CHUNKS)).rowcount > 0
    db.commit()
    db.close()


def test_added_story_needs_not_the_archives_stories(site_dir: Path) -> None:
    """An additions-only run merges the new story into the kept selections: the whole
    archive's stories are not even unpickled (here they could not be)."""
    _damage_snapshot_stories(site_dir)
    make_articles(site_dir / "articles", 1, start=60)
    result = run_cli("build", "-v", "-c", str(site_dir / "config.yaml"))
    assert result.code == 0, result.err
    assert "(1 read)" in result.out
    _same_as_uncached(site_dir)


def test_damaged_snapshot_is_computed_again_with_a_notice(site_dir: Path) -> None:
    """Stories needed whole (here by a monthly archive) that cannot be read from the
    snapshot: the snapshot is dropped and the build runs again, with a notice."""
    _damage_snapshot_stories(site_dir)
    config = site_dir / "config.yaml"
    config.write_text(config.read_text(encoding="utf-8").replace(
        "limit: 20", "limit: 20\n    archive: monthly"), encoding="utf-8")
    result = run_cli("build", "-c", str(config))
    assert result.code == 0 and "Traceback" not in result.err
    [notice] = [line for line in result.err.splitlines() if "damaged" in line]
    assert "computed again from the archive" in notice
    _same_as_uncached(site_dir)
    assert "damaged" not in run_cli("build", "-c", str(config)).err


def _reports_and_feeds_equal_uncached(folder: Path) -> str:
    """_same_as_uncached, and the same problems reported: returns the cached run's summary."""
    cached = run_cli("build", "-v", "-c", str(folder / "config.yaml"))
    assert cached.code == 0, cached.err
    uncached = run_cli("build", "--no-cache", "-v", "-c", str(folder / "uncached.yaml"))
    assert uncached.code == 0, uncached.err
    assert tree_bytes(folder / "feeds") == tree_bytes(folder / "uncached")
    assert cached.err == uncached.err
    return cached.out


def test_changed_and_removed_files_are_read_alone_and_merged_again(tmp_path: Path) -> None:
    """Files edited, removed, renamed, broken or mended, and new captures of known
    stories: only those files are read, and each story they touch is merged again from
    all its captures, warnings included, as a full pass would."""
    articles = tmp_path / "articles"
    make_articles(articles, 40)
    (articles / "broken.txt").write_bytes(b"\x00\x01binary")
    story_3 = articles / "000003.txt"  # its <time> disagrees with its capture time: a warning
    story_3.write_text(story_3.read_text(encoding="utf-8").replace(
        '<time datetime="2024', '<time datetime="2021'), encoding="utf-8")
    config = write_config(tmp_path, CHANNELS)
    (tmp_path / "uncached.yaml").write_text(config.read_text(encoding="utf-8").replace(
        "output: feeds", "output: uncached"), encoding="utf-8")
    assert "(41 read)" in _reports_and_feeds_equal_uncached(tmp_path)

    original = story_3.read_text(encoding="utf-8")
    later = f"<!--{int(original[4:17]) + 7_200_000}-->" + original[20:].replace("第一段", "更正的第一段")
    (articles / "000003-again.txt").write_text(later, encoding="utf-8")  # a new capture
    story_38 = articles / "000038.txt"
    story_38.write_text(story_38.read_text(encoding="utf-8").replace("第二段", "改写的第二段"),
                        encoding="utf-8")
    (articles / "000037.txt").unlink()
    (articles / "000036.txt").rename(articles / "moved.txt")
    (articles / "broken.txt").write_text(story_38.read_text(encoding="utf-8").replace(
        "story-38", "story-99"), encoding="utf-8")  # mended: a story of its own
    (articles / "000035.txt").write_bytes(b"\x00\x01binary")  # broken
    assert "(5 read)" in _reports_and_feeds_equal_uncached(tmp_path)

    story_3.unlink()  # the first capture goes; the later one, and its dates, stay
    (articles / "000034.txt").write_text(later, encoding="utf-8")  # a third capture, elsewhere
    assert "(1 read)" in _reports_and_feeds_equal_uncached(tmp_path)
    (articles / "000003-again.txt").unlink()
    (articles / "000034.txt").unlink()  # the story is gone
    assert "(0 read)" in _reports_and_feeds_equal_uncached(tmp_path)


def test_edit_makes_entries_only_of_the_stories_the_selections_read(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """An edited file's story is merged again; the other stories stay the rows the
    snapshot keeps them as. Only those a channel's selection reads become entries: here
    the newest few, of 60. What is stored again gives back every story (next build)."""
    from datetime import UTC, datetime

    from syndicate import stories
    from syndicate.build import build
    from syndicate.config import load_config

    make_articles(tmp_path / "articles", 60)
    write_config(tmp_path, {"all": dict(CHANNELS["all"], limit=5)})
    assert run_cli("build", "-c", str(tmp_path / "config.yaml")).code == 0
    made: list[str] = []
    original = stories._entry

    def counting(row):  # type: ignore[no-untyped-def]
        made.append(row[0])
        return original(row)

    monkeypatch.setattr(stories, "_entry", counting)
    old = tmp_path / "articles" / "000007.txt"
    old.write_text(old.read_text(encoding="utf-8").replace("第二段", "改写的第二段"),
                   encoding="utf-8")
    report = build(load_config(tmp_path / "config.yaml"), datetime.now(UTC))
    assert report.files_parsed == 1 and report.articles == 60
    assert 5 <= len(made) <= 10, made
    monkeypatch.undo()
    _same_as_uncached(tmp_path)
    old.unlink()  # through the stored rows again: every other story is still there
    _same_as_uncached(tmp_path)
    assert "59 articles" in run_cli("build", "-v", "-c", str(tmp_path / "config.yaml")).out


def test_snapshot_rows_with_damaged_values_are_computed_again(site_dir: Path) -> None:
    """Rows of the right shape whose dates cannot be read: the edit that places a story
    among them finds out, before anything is written, and the build runs again from
    the archive, with a notice."""
    import marshal

    from syndicate.stories import _Snapshot

    db = sqlite3.connect(site_dir / ".syndicate" / "state.sqlite")
    [(data,)] = db.execute("SELECT data FROM snapshot WHERE part = ?", (_Snapshot.CHUNKS,))
    rows = [(*row[:3], "not a date", *row[4:]) for row in marshal.loads(data)]
    db.execute("UPDATE snapshot SET data = ? WHERE part = ?", (marshal.dumps(rows),
                                                               _Snapshot.CHUNKS))
    db.commit()
    db.close()
    edited = site_dir / "articles" / "000030.txt"
    edited.write_text(edited.read_text(encoding="utf-8").replace("第二段", "改写的第二段"),
                      encoding="utf-8")
    result = run_cli("build", "-c", str(site_dir / "config.yaml"))
    assert result.code == 0 and "Traceback" not in result.err
    [notice] = [line for line in result.err.splitlines() if "damaged" in line]
    assert "computed again from the archive" in notice
    _same_as_uncached(site_dir)


def test_a_change_the_cache_has_no_record_of_goes_through_the_full_pass(site_dir: Path) -> None:
    """A changed file whose last entry the cache lacks (here deleted by hand): the run
    cannot tell which story the file held, so it reads the archive's entries whole."""
    db = sqlite3.connect(site_dir / ".syndicate" / "state.sqlite")
    assert db.execute("DELETE FROM files WHERE path = '000059.txt'").rowcount == 1
    db.commit()
    db.close()
    _edit(site_dir)  # 000059.txt
    result = run_cli("build", "-v", "-c", str(site_dir / "config.yaml"))
    assert result.code == 0, result.err
    assert "(1 read)" in result.out
    _same_as_uncached(site_dir)


def _random_changes(rng: random.Random, articles: Path, step: int) -> None:
    """One to four changes of the kinds scraped archives see, picked at random."""
    for n in range(rng.randint(1, 4)):
        files = sorted(articles.iterdir())
        good = [f for f in files if f.read_bytes().startswith(b"<!--")]
        path = rng.choice(good)
        text = path.read_text(encoding="utf-8")
        kind = rng.choice(["edit", "delete", "rename", "recapture", "break", "touch",
                           "disagree", "new", "earlier", "another story", "mend", "future"])
        broken = [f for f in files if f not in good]
        if kind == "mend" and broken:  # a broken file becomes a capture of some story
            rng.choice(broken).write_text(text, encoding="utf-8")
        elif kind == "future":  # a capture time after today's: judged again every run
            future = int(time.time() * 1000) + 30 * 86_400_000
            path.write_text(f"<!--{future}-->" + text[20:], encoding="utf-8")
        elif kind == "another story":  # the file now holds a different story (URL)
            path.write_text(text.replace("/story-", f"/story-{step}{n}0"), encoding="utf-8")
        elif kind == "edit":
            path.write_text(text.replace("第一段", f"第一段（改{step}{n}）"), encoding="utf-8")
        elif kind == "delete":
            path.unlink()
        elif kind == "rename":
            path.rename(articles / f"moved-{step}{n}-{path.name}")
        elif kind in ("recapture", "earlier"):  # the same story captured again, or before
            hours = rng.choice([2, 30]) * (1 if kind == "recapture" else -1)
            header = int(text[4:17]) + hours * 3_600_000
            again = f"<!--{header}-->" + text[20:]
            if rng.random() < 0.5:
                again = again.replace("第二段", f"第二段（更正{step}{n}）")
            (articles / f"again-{step}{n}.txt").write_text(again, encoding="utf-8")
        elif kind == "break":
            path.write_bytes(b"\x00\x01binary")
        elif kind == "touch":  # the same bytes written again: a new mtime
            path.write_text(text, encoding="utf-8")
        elif kind == "disagree":  # a <time> three years off: a warning on its first capture
            path.write_text(text.replace('<time datetime="2024', '<time datetime="2021'),
                            encoding="utf-8")
        else:
            make_articles(articles, rng.randint(1, 2), start=200 + 10 * step + 3 * n)


# Four random sequences in the suite; SYNDICATE_CHANGE_SEEDS=40 runs more (75 s).
@pytest.mark.parametrize("seed", range(int(os.environ.get("SYNDICATE_CHANGE_SEEDS", "4"))))
def test_changed_files_give_what_a_full_pass_gives(tmp_path: Path, seed: int) -> None:
    """Rounds of random edits, removals, renames, captures, broken and touched files:
    after each, the build that merges again only the stories the changes touch writes
    and reports exactly what a full pass over the same cache does. (Compared with a
    full pass, not a --no-cache build, because both hold dates to the same ledger.)"""
    rng = random.Random(seed)
    site = tmp_path / "site"
    make_articles(site / "articles", 24)
    # `all` keeps monthly archives: they read every story, not only the newest.
    small = {"all": {**CHANNELS["all"], "limit": 8, "archive": "monthly"},
             "world": {**CHANNELS["world"], "limit": 2}, "business": CHANNELS["business"]}
    write_config(site, small)
    assert run_cli("build", "-c", str(site / "config.yaml")).code == 0
    for step in range(4):
        _random_changes(rng, site / "articles", step)
        full = tmp_path / f"full-{step}"
        shutil.copytree(site, full, symlinks=True)  # mtimes too: the same cache entries hold
        db = sqlite3.connect(full / ".syndicate" / "state.sqlite")
        db.execute("DELETE FROM snapshot")  # no last result: the full pass
        db.commit()
        db.close()
        changed = run_cli("build", "-v", "-c", str(site / "config.yaml"))
        whole = run_cli("build", "-v", "-c", str(full / "config.yaml"))
        assert changed.code == whole.code == 0, changed.err + whole.err
        assert tree_bytes(site / "feeds") == tree_bytes(full / "feeds")
        assert changed.err.replace(str(site), "") == whole.err.replace(str(full), "")
        assert changed.out.split(" in ")[0] == whole.out.split(" in ")[0]


def test_added_files_are_told_from_any_other_change_of_the_listing() -> None:
    """The additions-only path compares listings in scan order with one walk: only new
    files (anywhere, a new folder too) count as additions; a file changed, removed or
    renamed anywhere means the listing is not the old one plus some files."""
    from syndicate.stories import added_files

    before = (("a.txt", 1, 10), ("b.txt", 2, 20), ("sub/c.txt", 3, 30))
    assert added_files(before, before) == []
    assert added_files(before, (("a.txt", 1, 10), ("ab.txt", 9, 90), ("b.txt", 2, 20),
                                ("new/x.txt", 5, 50), ("sub/c.txt", 3, 30), ("z.txt", 4, 40))
                       ) == [("ab.txt", 9, 90), ("new/x.txt", 5, 50), ("z.txt", 4, 40)]
    assert added_files(before, (("a.txt", 1, 10), ("b.txt", 2, 21), ("sub/c.txt", 3, 30))) is None
    assert added_files(before, (("a.txt", 1, 10), ("sub/c.txt", 3, 30), ("z.txt", 4, 40))) is None
    assert added_files(before, (("a.txt", 1, 10), ("b2.txt", 2, 20), ("sub/c.txt", 3, 30))) is None
    assert added_files((), before) == list(before)


def test_snapshot_rows_give_back_the_entries_they_were_made_of() -> None:
    """The snapshot keeps stories as rows of plain values: every field comes back, and
    every date to the microsecond, in UTC (the <time> value's own offset is not kept:
    nothing shows it)."""
    from datetime import UTC, datetime, timedelta, timezone

    from syndicate.model import Entry
    from syndicate.stories import _entry, _row

    published = datetime(2024, 5, 16, 3, 37, 2, 123000, tzinfo=UTC)
    full = Entry(path="a/b.txt", url="https://example.com/world/1/", title="标题 <b>",
                 published=published, captured=published + timedelta(days=2),
                 source_time=datetime(2024, 5, 16, 11, 37, tzinfo=timezone(timedelta(hours=8))),
                 authors=("甲", "乙"), section="world", content_hash="0" * 32,
                 warnings=("w1", "w2"), disagreement="far apart",
                 updated=published + timedelta(hours=1), recheck=True)
    bare = Entry(path="c.txt", url="https://example.com/x/", title="t", published=published,
                 captured=published, source_time=None, authors=(), section="",
                 content_hash="1" * 32)
    for entry in (full, bare):
        back = _entry(_row(entry))
        assert back == entry  # aware datetimes are equal when their instants are
        assert all(d.tzinfo is UTC for d in (back.published, back.captured, back.source_time,
                                            back.updated) if d)
    assert _entry(_row(full)).published.microsecond == 123000


def test_first_channel_with_images_as_enclosures_gets_bodies_without_images(tmp_path: Path) -> None:
    """The body without its images is made only when a channel sends images as
    enclosures only: the articles kept by a build that had none must be made again."""
    china = {"title": "China", "link": "https://cn.nytimes.com/china/",
             "include": {"section": "china"}}  # odd-numbered articles: each has an image
    make_articles(tmp_path / "articles", 30)
    write_config(tmp_path, {"all": CHANNELS["all"], "china": china})
    assert run_cli("build", "-c", str(tmp_path / "config.yaml")).code == 0
    assert "&lt;img" in (tmp_path / "feeds" / "china.xml").read_text(encoding="utf-8")
    write_config(tmp_path, {"all": CHANNELS["all"], "china": {**china, "images": "enclosure"}})
    _same_as_uncached(tmp_path)
    feed = (tmp_path / "feeds" / "china.xml").read_text(encoding="utf-8")
    assert "<enclosure" in feed and "&lt;img" not in feed
    assert "&lt;img" in (tmp_path / "feeds" / "all.xml").read_text(encoding="utf-8")


# A build in a process of its own, as `syndicate build` runs it, that says on stderr each
# time it lists the archive through workers.aside.
_SPIED_BUILD = """
import sys
import syndicate.build, syndicate.cli
real = syndicate.build.aside
def spy(work, meanwhile):
    print("listed aside", file=sys.stderr)
    return real(work, meanwhile)
syndicate.build.aside = spy
sys.exit(syndicate.cli.main(sys.argv[1:]))
"""


def _spied_build(config: Path) -> Run:
    proc = subprocess.run([sys.executable, "-c", _SPIED_BUILD, "build", "-v", "-c", str(config)],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
    return Run(proc.returncode, proc.stdout, proc.stderr)


def test_a_large_archive_is_listed_aside_with_the_same_results(tmp_path: Path) -> None:
    """From ASIDE_MIN known files on, a build lists the archive in a process of its own
    while it imports what it may need (build.py). Nothing else changes: nothing changed
    is a run that writes nothing, a new story and a hand-edited feed give what a
    --no-cache build gives, and a source folder gone is an error that leaves the feeds."""
    make_articles(tmp_path / "articles", ASIDE_MIN)
    config = write_config(tmp_path, CHANNELS)
    cold = _spied_build(config)
    assert cold.code == 0, cold.err
    assert "listed aside" not in cold.err  # the cache knew no file: no stats to make

    before = _mtimes(tmp_path)
    warm = _spied_build(config)
    assert warm.code == 0, warm.err
    assert "listed aside" in warm.err
    assert "(0 read)" in warm.out and " 0 written, 9 unchanged" in warm.out
    assert _mtimes(tmp_path) == before

    make_articles(tmp_path / "articles", 1, start=ASIDE_MIN)
    new = _spied_build(config)
    assert new.code == 0, new.err
    assert "listed aside" in new.err and "(1 read)" in new.out
    _same_as_uncached(tmp_path)

    # The listing is the last build's, but a feed was edited: the full run repairs it.
    (tmp_path / "feeds" / "world.xml").write_text("<rss/>", encoding="utf-8")
    repaired = _spied_build(config)
    assert repaired.code == 0, repaired.err
    assert "listed aside" in repaired.err and " 1 written, 8 unchanged" in repaired.out
    _same_as_uncached(tmp_path)

    published = tree_bytes(tmp_path / "feeds")
    (tmp_path / "articles").rename(tmp_path / "elsewhere")
    gone = _spied_build(config)
    assert gone.code == 4
    assert "listed aside" in gone.err and "source folder does not exist" in gone.err
    assert "Traceback" not in gone.err
    assert tree_bytes(tmp_path / "feeds") == published
